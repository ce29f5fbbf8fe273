# Fine-tune a FastMIM ViT-B/16 (pre-trained at 128 px) on ImageNet-1k at 224:
# 100 epochs, total batch 1024, blr 6e-4 -> lr 6e-4 * 1024 / 256, layer decay
# 0.70, drop path 0.1, mixup 0.8 / cutmix 1.0, label smoothing 0.1, global
# average pooling with its own LayerNorm (the pre-training final norm is not
# used). The 128-px sin-cos position embedding is resized to 224 on load.
# Paper: 83.8 top-1 (800-epoch pre-training), 83.6 (400 epochs).
#
#   tools/dist_train.sh \
#       configs/fastmim/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=PRETRAIN.pth
_base_ = [
    '../../_base_/datasets/imagenet_finetune-224px.py',
    '../../_base_/schedules/adamw_layer-decay_finetune-100e.py',
    '../../_base_/default_runtime.py',
]

checkpoint = 'work_dirs/fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px/epoch_800.pth'  # noqa: E501
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        out_type='avg_featmap',
        final_norm=False,
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]))

optim_wrapper = dict(
    optimizer=dict(lr=6e-4 * 1024 / 256),
    paramwise_cfg=dict(layer_decay_rate=0.70))
