# Demo: FastMIM on a small ViT (192 wide, 6 blocks) at 128 px, on the
# synthetic ImageNet-layout dataset `make demo` generates in data/fastmim_demo
# (tools/misc/make_demo_dataset.py). A few minutes on 2 CPU cores; writes a
# reconstruction panel (input, masked input, HOG target, predicted HOG).
_base_ = [
    '../_base_/models/fastmim_vit-base-p16.py',
    '../_base_/datasets/imagenet_fastmim-128px.py',
    '../_base_/schedules/adamw_coslr_pretrain.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        arch=dict(
            embed_dims=192, num_layers=6, num_heads=3,
            feedforward_channels=768)),
    neck=dict(in_channels=192))

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    pin_memory=False,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root='data/fastmim_demo',
        ann_file='meta/train.txt',
        data_prefix='train',
        pipeline={{_base_.train_pipeline}}))

optim_wrapper = dict(
    type='OptimWrapper', _delete_=True,
    optimizer=dict(
        type='AdamW', lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg={{_base_.optim_wrapper.paramwise_cfg}})
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=5, eta_min=1e-5, by_epoch=True,
         begin=1, end=6, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=6)
auto_scale_lr = dict(base_batch_size=32)

default_hooks = dict(
    logger=dict(interval=4),
    checkpoint=dict(interval=6, max_keep_ckpts=1))
custom_hooks = [dict(type='FastMIMReconstructionHook', interval=2)]
randomness = dict(seed=0, diff_rank_seed=False)
