# Small chain, step 3 (ADE20K): the UperNet config
# (../benchmarks/mmsegmentation/upernet_fastmim-vit-base-p16_8xb2-160k_ade20k-512x512.py)  # noqa: E501
# with the ViT of step 2 (its 4 blocks feed the 4 pyramid levels), 128 px
# crops, sliding-window test of 128 px windows, on the ADE20K-format images
# of data/small_chain/ade: 2 iterations, then one evaluation. It starts from
# step 2's last checkpoint; another one:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH.pth
# See docs/en/user_guides/small_chain.md.
_base_ = '../benchmarks/mmsegmentation/upernet_fastmim-vit-base-p16_8xb2-160k_ade20k-512x512.py'  # noqa: E501

checkpoint = 'work_dirs/2_finetune_vit/epoch_1.pth'
data_root = 'data/small_chain/ade'
crop_size = (128, 128)
embed_dims = 64
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=embed_dims,
            num_layers=4,
            num_heads=2,
            feedforward_channels=128),
        img_size=crop_size,
        out_indices=[0, 1, 2, 3],
        init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(embed_dim=embed_dims),
    decode_head=dict(in_channels=[embed_dims] * 4, channels=embed_dims),
    auxiliary_head=dict(in_channels=embed_dims, channels=32),
    test_cfg=dict(crop_size=crop_size, stride=(85, 85)))

train_pipeline = _base_.train_dataloader.dataset.pipeline
train_pipeline[2].scale = (512, 128)  # RandomResize, the config's 2048:512
train_pipeline[3].crop_size = crop_size  # RandomCrop
test_pipeline = _base_.test_dataloader.dataset.pipeline
test_pipeline[1].scale = (768, 192)  # Resize
# No loader workers: on a CPU the model's step is the cost, and worker
# processes would compete with it for the cores.
train_dataloader = dict(
    num_workers=0, dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(paramwise_cfg=dict(num_layers=4))
train_cfg = dict(max_iters=2, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
