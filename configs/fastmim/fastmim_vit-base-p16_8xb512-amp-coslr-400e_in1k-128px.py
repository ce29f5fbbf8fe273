# FastMIM ViT-B/16, 400 epochs at 128 px (paper: 83.6 top-1 after
# fine-tuning, about 304 GPU-hours of pre-training).
_base_ = './fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px.py'

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=20,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=380,
        eta_min=0.,
        by_epoch=True,
        begin=20,
        end=400,
        convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=400)
