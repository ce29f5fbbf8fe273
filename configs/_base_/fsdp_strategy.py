# FSDP for the large backbones (docs/en/advanced_guides/cluster.md, "FSDP"):
# parameters, gradients and AdamW state sharded over the GPUs, each ViT or
# Swin block (encoder and decoder) its own unit, full checkpoints, no
# activation checkpointing unless asked for. A config adding this piece to
# its _base_ also sets optim_wrapper=dict(use_fsdp=True) itself (fp16 loss
# scaling over the shards), as its other base defines optim_wrapper.
runner_type = 'FastMIMFlexibleRunner'
strategy = dict(
    type='FastMIMFSDPStrategy',
    model_wrapper=dict(
        type='MMFullyShardedDataParallel',
        use_orig_params=True,
        auto_wrap_policy='fastmim_block_wrap_policy'),
    state_dict_cfg='full',
    activation_checkpointing=False)
