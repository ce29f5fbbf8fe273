# FastMIM ViT-L/16, 400 epochs at 128 px (the ViT-B recipe: total batch
# 4096, lr 1.5e-4 * 4096 / 256, 20 warm-up epochs), with FSDP: parameters,
# gradients and AdamW state are sharded over the GPUs instead of copied on
# each (docs/en/advanced_guides/cluster.md, "FSDP").
#
# - Each of the 24 blocks (12.6M parameters), and each decoder block, is its
#   own FSDP unit: only the block running is gathered whole.
# - Checkpoints are full (state_dict_cfg='full'): one file, as a DDP run
#   saves, that fine-tuning loads and any number of GPUs resumes. 'local'
#   saves each GPU's shard (a folder of rank{i}.pth), resumed only by as
#   many GPUs.
# - Activation checkpointing (recompute each block in the backward pass:
#   less memory for the batch of 512 per GPU, about a third more compute):
#   --cfg-options strategy.activation_checkpointing=True
_base_ = [
    './fastmim_vit-base-p16_8xb512-amp-coslr-400e_in1k-128px.py',
    '../_base_/fsdp_strategy.py'
]

model = dict(backbone=dict(arch='large'), neck=dict(in_channels=1024))

# fp16 loss scaling over the shards (bf16 needs none).
optim_wrapper = dict(use_fsdp=True)
