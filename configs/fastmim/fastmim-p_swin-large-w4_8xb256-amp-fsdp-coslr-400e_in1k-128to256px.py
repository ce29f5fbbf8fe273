# FastMIM-P Swin-L (the 128 -> 256 px recipe of its DDP config) with FSDP:
# parameters, gradients and AdamW state are sharded over the GPUs instead
# of copied on each (docs/en/advanced_guides/cluster.md, "FSDP").
#
# - Each Swin block (24 in the backbone, 7.1M parameters each in its third
#   stage, 28.3M in its fourth) and each decoder block is its own FSDP
#   unit: only the block running is gathered whole.
# - Checkpoints are full (state_dict_cfg='full'): one file, as a DDP run
#   saves, that fine-tuning loads and any number of GPUs resumes. 'local'
#   saves each GPU's shard (a folder of rank{i}.pth), faster for large
#   models, resumed only by as many GPUs.
# - Activation checkpointing (recompute each Swin block in the backward
#   pass: less memory, about a third more compute):
#   --cfg-options strategy.activation_checkpointing=True
_base_ = [
    './fastmim-p_swin-large-w4_8xb256-amp-coslr-400e_in1k-128to256px.py',
    '../_base_/fsdp_strategy.py'
]

# fp16 loss scaling over the shards (bf16 needs none).
optim_wrapper = dict(use_fsdp=True)
