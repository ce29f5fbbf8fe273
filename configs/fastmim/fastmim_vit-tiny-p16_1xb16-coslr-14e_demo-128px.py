# Demo: FastMIM on a small ViT (192 wide, 6 blocks) at 128 px, on the
# synthetic ImageNet-layout dataset `make demo` generates in data/fastmim_demo
# (tools/misc/make_demo_dataset.py). About 2 minutes on 2 CPU cores; writes a
# reconstruction panel (input, masked input, HOG target, predicted HOG).
# A lower lr than the paper's scaling rule and small batches: in ~450 steps
# the model leaves the "predict the mean histogram" plateau (around step 200)
# and learns to carry visible orientations into masked blocks.
_base_ = [
    '../_base_/models/fastmim_vit-base-p16.py',
    '../_base_/datasets/imagenet_fastmim-128px.py',
    '../_base_/schedules/adamw_coslr_pretrain.py',
    '../_base_/pretrain_runtime.py',
]

model = dict(
    backbone=dict(
        arch=dict(
            embed_dims=192,
            num_layers=6,
            num_heads=3,
            feedforward_channels=768)),
    neck=dict(in_channels=192))

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    pin_memory=False,
    dataset=dict(
        dataset=dict(
            _delete_=True,
            type='CustomDataset',
            data_root='data/fastmim_demo',
            ann_file='meta/train.txt',
            data_prefix='train',
            pipeline={{_base_.train_pipeline}})))

optim_wrapper = dict(
    type='OptimWrapper',
    _delete_=True,
    optimizer=dict(
        type='AdamW', lr=3e-4, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg={{_base_.optim_wrapper.paramwise_cfg}})
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=13,
        eta_min=1e-4,
        by_epoch=True,
        begin=1,
        end=14,
        convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=14)
auto_scale_lr = dict(base_batch_size=16)

default_hooks = dict(
    logger=dict(interval=16),
    checkpoint=dict(interval=14, max_keep_ckpts=1),
    reconstruction=dict(interval=7))
randomness = dict(seed=0, diff_rank_seed=False)
