# FastMIM Swin-B (window 4), 400 epochs at 128 px, total batch 2048
# (8 GPUs x 256), lr 1.5e-4 * 2048 / 256, 10 warm-up epochs.
# Paper: 84.1 top-1 after fine-tuning at 224 px (window 7).
_base_ = [
    '../_base_/models/fastmim_swin-base-w4.py',
    '../_base_/datasets/imagenet_fastmim-128px.py',
    '../_base_/schedules/adamw_coslr_pretrain.py',
    '../_base_/pretrain_runtime.py',
]

train_dataloader = dict(batch_size=256)
optim_wrapper = dict(optimizer=dict(lr=1.5e-4 * 2048 / 256))
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
        T_max=390,
        eta_min=0.,
        by_epoch=True,
        begin=10,
        end=400,
        convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=400)
auto_scale_lr = dict(base_batch_size=2048)
