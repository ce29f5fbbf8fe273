# FastMIM is generic: the same algorithm pre-trains a CNN. ResNet-50 at
# 128 px ends at stride 32 (4 x 4 features), so mask blocks are 32 px and the
# decoder predicts 27 x (32 / 8)^2 = 432 HOG values per block.
_base_ = [
    '../_base_/models/fastmim_swin-base-w4.py',
    '../_base_/datasets/imagenet_fastmim-128px.py',
    '../_base_/schedules/adamw_coslr_pretrain.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=50,
        out_indices=(3, ),
        norm_cfg=dict(type='SyncBN', requires_grad=True)),
    neck=dict(in_channels=2048, num_layers=1))

train_dataloader = dict(batch_size=256)
optim_wrapper = dict(optimizer=dict(lr=1.5e-4 * 2048 / 256))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=390, eta_min=0., by_epoch=True,
         begin=10, end=400, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=400)
auto_scale_lr = dict(base_batch_size=2048)
