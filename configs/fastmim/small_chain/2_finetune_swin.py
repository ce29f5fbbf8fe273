# Small chain, step 2 (Swin): the Swin-B fine-tuning config
# (../benchmarks/swin-base-w7_8xb128-coslr-100e_in1k.py) with the Swin of
# step 1 at 112 px, window 7 as in the paper (its relative-position tables
# are resized from window 4 on load), on the 16 images of
# data/small_chain/imagenet: 1 epoch of 2 iterations, validated on the same
# images (a rehearsal, not a measurement). It starts from step 1's last
# checkpoint; another one:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH.pth
# See docs/en/user_guides/small_chain.md.
_base_ = '../benchmarks/swin-base-w7_8xb128-coslr-100e_in1k.py'

checkpoint = 'work_dirs/1_pretrain_swin/epoch_1.pth'
data_root = 'data/small_chain/imagenet'
image_size = 112
model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=32,
            depths=[1, 1, 1, 1],
            num_heads=[1, 2, 4, 8]),
        img_size=image_size,
        pad_small_map=True,  # the last stage is 4 x 4, the window 7 x 7
        init_cfg=dict(checkpoint=checkpoint)),
    head=dict(in_channels=256))

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
