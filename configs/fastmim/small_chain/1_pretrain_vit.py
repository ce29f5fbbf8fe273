# Small chain, step 1 (ViT): the ViT-B pre-training config
# (../fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px.py) with a ViT
# of 4 blocks, 64 wide, at 64 px (4 x 4 patches of 16 px), on the 16 images
# of data/small_chain/imagenet: 1 epoch of 2 iterations. See
# docs/en/user_guides/small_chain.md.
_base_ = '../fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px.py'

input_size = 64
model = dict(
    input_size=input_size,
    backbone=dict(
        arch=dict(
            embed_dims=64, num_layers=4, num_heads=2,
            feedforward_channels=128),
        img_size=input_size),
    neck=dict(in_channels=64, embed_dims=32, num_heads=2))

train_pipeline = _base_.train_dataloader.dataset.dataset.pipeline
train_pipeline[0].scale = input_size  # DecodeRandomResizedCrop
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        dataset=dict(
            data_root='data/small_chain/imagenet', pipeline=train_pipeline)))
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1))
