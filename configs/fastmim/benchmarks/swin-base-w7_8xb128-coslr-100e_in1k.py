# Fine-tune a FastMIM Swin-B (pre-trained at 128 px, window 4) on
# ImageNet-1k at 224 px with window 7: 100 epochs, total batch 1024, blr 1e-3
# -> lr 1e-3 * 1024 / 256, layer decay 0.80, drop path 0.1, mixup/cutmix,
# label smoothing 0.1. The relative-position bias tables are interpolated
# from window 4 to 7 on load. Paper: 84.1 top-1.
_base_ = [
    '../../_base_/datasets/imagenet_finetune-224px.py',
    '../../_base_/schedules/adamw_layer-decay_finetune-100e.py',
    '../../_base_/default_runtime.py',
]

checkpoint = 'work_dirs/fastmim_swin-base-w4_8xb256-amp-coslr-400e_in1k-128px/epoch_400.pth'  # noqa: E501
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='SwinTransformer',
        arch='base',
        img_size=224,
        stage_cfgs=dict(block_cfgs=dict(window_size=7)),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=1024,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]))

optim_wrapper = dict(
    optimizer=dict(lr=1e-3 * 1024 / 256),
    paramwise_cfg=dict(layer_decay_rate=0.80))
