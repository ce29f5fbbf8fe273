# Small chain, step 2 (ViT), linear probing instead of fine-tuning: the
# linear-probing config
# (../benchmarks/vit-base-p16_8xb2048-linear-coslr-90e_in1k.py) on the ViT
# of step 1 at 64 px (all 4 blocks frozen), on the 16 images of
# data/small_chain/imagenet: 1 epoch of 2 iterations, validated on the same
# images (a rehearsal, not a measurement). It starts from step 1's last
# checkpoint; another one:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH.pth
# See docs/en/user_guides/small_chain.md.
_base_ = '../benchmarks/vit-base-p16_8xb2048-linear-coslr-90e_in1k.py'

checkpoint = 'work_dirs/1_pretrain_vit/epoch_1.pth'
data_root = 'data/small_chain/imagenet'
image_size = 64
embed_dims = 64
model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=embed_dims,
            num_layers=4,
            num_heads=2,
            feedforward_channels=128),
        img_size=image_size,
        frozen_stages=4,
        init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(input_features=embed_dims),
    head=dict(in_channels=embed_dims))

train_pipeline = _base_.train_dataloader.dataset.dataset.pipeline
train_pipeline[1].scale = image_size  # RandomResizedCrop
test_pipeline = _base_.val_dataloader.dataset.pipeline
test_pipeline[1].scale = image_size * 8 // 7  # ResizeEdge
test_pipeline[2].crop_size = image_size  # CenterCrop
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(dataset=dict(data_root=data_root, pipeline=train_pipeline)))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(data_root=data_root, split='train', pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1))
