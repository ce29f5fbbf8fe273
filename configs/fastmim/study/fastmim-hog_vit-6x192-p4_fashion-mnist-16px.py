# FastMIM with the HOG target, pre-trained on Fashion-MNIST at 16 px: 4x4
# patch tokens of 4 px, 4-px mask blocks (ratio 0.75). The HOG cell scales
# with the patch as in the paper (patch 16, cells of 8 px): patch 4, cells of
# 2 px, so each block's target is 27 x 2 x 2 = 108 values, at 16 and at 32 px
# alike. The decoder is one block of width 128 (4 heads of 32 dims, as the
# paper's 256-wide decoder has 8).
_base_ = [
    '../../_base_/models/fastmim_vit-base-p16.py',
    './fashion-mnist_base.py',
]

model = dict(
    input_size=16,
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        arch={{_base_.arch}}, img_size=16, patch_size={{_base_.patch_size}}),
    neck=dict(in_channels=192, out_channels=108, embed_dims=128, num_heads=4),
    target_generator=dict(pool=2),
    mask_generator=dict(mask_patch_size={{_base_.patch_size}}))

train_dataloader = dict(
    dataset=dict(pipeline={{_base_.pretrain_pipeline_16px}}))
