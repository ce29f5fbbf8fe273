# FastMIM ViT-B/16, 800 epochs at 128 px on ImageNet-1k, total batch 4096
# (8 GPUs x 512), lr 1.5e-4 * 4096 / 256, 20 warm-up epochs.
# Paper: 83.8 top-1 after 100-epoch fine-tuning at 224 px.
_base_ = [
    '../_base_/models/fastmim_vit-base-p16.py',
    '../_base_/datasets/imagenet_fastmim-128px.py',
    '../_base_/schedules/adamw_coslr_pretrain.py',
    '../_base_/pretrain_runtime.py',
]
