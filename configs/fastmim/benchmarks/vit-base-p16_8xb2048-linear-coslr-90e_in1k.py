# Linear probing of a FastMIM ViT-B/16 (MAE's protocol; the FastMIM paper
# reports fine-tuning only): frozen encoder, class token after the final
# norm, BatchNorm without affine before a linear classifier, LARS lr 0.1 *
# 16384 / 256, 90 epochs with 10 warm-up, total batch 16384 (8 x 2048).
# It starts from the ViT-B 800-epoch pre-training's last checkpoint; another
# one:
#   --cfg-options model.backbone.init_cfg.checkpoint=PRETRAIN.pth
_base_ = [
    '../../_base_/datasets/imagenet_finetune-224px.py',
    '../../_base_/default_runtime.py',
]

train_pipeline = [
    dict(type='SafeLoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=2048,
    drop_last=True,
    dataset=dict(dataset=dict(pipeline=train_pipeline)))

checkpoint = 'work_dirs/fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px/epoch_800.pth'  # noqa: E501
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch='base',
        img_size=224,
        patch_size=16,
        frozen_stages=12,
        out_type='cls_token',
        final_norm=True,
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=768),
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='LARS', lr=0.1 * 16384 / 256, weight_decay=0.0, momentum=0.9))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=10,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=80,
        by_epoch=True,
        begin=10,
        end=90,
        eta_min=0.0,
        convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=90, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=16384)
