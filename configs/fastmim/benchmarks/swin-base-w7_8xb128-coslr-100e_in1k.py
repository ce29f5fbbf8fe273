# Fine-tune a FastMIM Swin-B (pre-trained at 128 px, window 4) on
# ImageNet-1k at 224 px with window 7: the ViT-B recipe with blr 1e-3 ->
# lr 1e-3 * 1024 / 256 and layer decay 0.80. The relative-position bias
# tables are interpolated from window 4 to 7 on load. Paper: 84.1 top-1.
# It starts from the Swin-B pre-training's last checkpoint; another one:
#   --cfg-options model.backbone.init_cfg.checkpoint=PRETRAIN.pth
_base_ = './vit-base-p16_8xb128-coslr-100e_in1k.py'

checkpoint = 'work_dirs/fastmim_swin-base-w4_8xb256-amp-coslr-400e_in1k-128px/epoch_400.pth'  # noqa: E501
model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        arch='base',
        img_size=224,
        stage_cfgs=dict(block_cfgs=dict(window_size=7)),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(_delete_=True, type='GlobalAveragePooling'),
    head=dict(in_channels=1024))

optim_wrapper = dict(
    optimizer=dict(lr=1e-3 * 1024 / 256),
    paramwise_cfg=dict(layer_decay_rate=0.80))
