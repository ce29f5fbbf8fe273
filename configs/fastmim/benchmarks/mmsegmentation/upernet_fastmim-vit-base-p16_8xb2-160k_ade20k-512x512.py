# ADE20K transfer of a FastMIM ViT-B/16: UperNet, 512 x 512 crops,
# 8 GPUs x 2 images, 160k iterations, sliding-window test (stride 341).
# Paper (FastMIM ViT-B, pre-trained at 128 px): 49.5 mIoU (single scale).
#
#   tools/dist_train.sh configs/fastmim/benchmarks/mmsegmentation/<this file> \
#       8 --cfg-options model.backbone.init_cfg.checkpoint=<FastMIM .pth>
#   python tools/test.py <this file> <work dir>/<checkpoint>.pth
# (or set `checkpoint` below: it is read when the config is parsed, so
# `--cfg-options checkpoint=...` would not reach the backbone.)
#
# The backbone is MMPretrain's VisionTransformer, so FastMIM pre-training
# checkpoints (``backbone.*`` keys in MMPretrain names) load without
# conversion; the 128-px position embedding (8 x 8) is resized to 512 px
# (32 x 32) on load.
#
# Deviations from the reference (BEiT's semantic segmentation code):
# - No relative position bias: MMPretrain's VisionTransformer has none (the
#   reference adds BEiT-style relative position bias to every block, learnt
#   from zero during fine-tuning); the absolute position embedding of the
#   checkpoint is fine-tuned instead.
# - Features from blocks [1, 3, 9, 11] (0-based), as in the reference config
#   (MMSegmentation's BEiT/MAE configs use [3, 5, 7, 11]); the 4 scales come
#   from MMSegmentation's MultiLevelNeck (1x1 conv, resize x4/x2/x1/x0.5, 3x3
#   conv). BEiT's code uses a deconvolution pyramid instead (MMSegmentation's
#   `Feature2Pyramid`, a drop-in replacement here).
# - Layer-wise lr decay through `custom_keys` of MMEngine's default optimizer
#   wrapper constructor (MMSegmentation's LayerDecayOptimizerConstructor only
#   accepts its own BEiT/MAE backbones, MMPretrain's needs a model-level
#   `get_layer_depth` that MMSegmentation's EncoderDecoder lacks). Same
#   scales as BEiT: patch embedding, class token and position embedding
#   0.75^13, block i 0.75^(12 - i), neck and heads 1. No weight decay on the
#   class token, position embedding and LayerNorms, nor on 1-D parameters of
#   the neck and heads; the linear-layer biases inside the blocks do decay
#   (BEiT exempts them).
_base_ = [
    '_base_/datasets/ade20k_512x512.py',
    '_base_/default_runtime.py',
    '_base_/schedules/schedule_160k.py',
]
custom_imports = dict(
    imports=['mmpretrain.models', 'fastmim_mm'], allow_failed_imports=False)
default_scope = 'mmseg'

# FastMIM pre-training checkpoint (tools/train.py on configs/fastmim/...):
checkpoint = 'work_dirs/fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px/epoch_800.pth'  # noqa: E501

crop_size = (512, 512)
num_layers = 12
layer_decay_rate = 0.75
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='mmpretrain.VisionTransformer',
        arch='base',
        img_size=crop_size,
        patch_size=16,
        out_indices=(1, 3, 9, 11),
        out_type='featmap',
        drop_path_rate=0.1,
        # Block outputs go to the neck as they are (as in BEiT); the final
        # LayerNorm of the checkpoint is not used.
        final_norm=False,
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(
        type='MultiLevelNeck',
        in_channels=[768, 768, 768, 768],
        out_channels=768,
        scales=[4, 2, 1, 0.5]),
    decode_head=dict(
        type='UPerHead',
        in_channels=[768, 768, 768, 768],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=768,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=768,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

# 8 GPUs x 2 images = batch 16.
train_dataloader = dict(batch_size=2, num_workers=2)
val_dataloader = dict(batch_size=1, num_workers=2)
test_dataloader = val_dataloader

# AdamW lr 3e-4, wd 0.05, layer-wise lr decay 0.75 (see above).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=3e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.,
        bias_decay_mult=0.,
        flat_decay_mult=0.,
        custom_keys={
            'backbone.cls_token':
            dict(lr_mult=layer_decay_rate**(num_layers + 1), decay_mult=0.),
            'backbone.pos_embed':
            dict(lr_mult=layer_decay_rate**(num_layers + 1), decay_mult=0.),
            'backbone.patch_embed':
            dict(lr_mult=layer_decay_rate**(num_layers + 1)),
            **{
                f'backbone.layers.{i}.':
                dict(lr_mult=layer_decay_rate**(num_layers - i))
                for i in range(num_layers)
            },
            **{
                f'backbone.layers.{i}.ln':
                dict(
                    lr_mult=layer_decay_rate**(num_layers - i),
                    decay_mult=0.)
                for i in range(num_layers)
            },
        }))
# Linear warm-up over 1500 iterations, then poly (power 1) decay to 0.
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=1500,
        end=160000,
        by_epoch=False),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=160000, val_interval=16000)
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=16000, max_keep_ckpts=2))
# lr 3e-4 is for 8 GPUs x 2 images; `tools/train.py --auto-scale-lr`
# rescales it for other total batches.
auto_scale_lr = dict(enable=False, base_batch_size=16)
