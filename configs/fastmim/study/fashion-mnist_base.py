# What every arm of the Fashion-MNIST study shares
# (projects/fashion_mnist_study/): the data, the encoder (ViT, 6
# blocks of width 192, patch 4) and the runtime. The study sets seeds,
# iteration counts and the data location; the configs also train on their own
# with tools/train.py once data/fashion_mnist holds the un-gzipped IDX files.
#
# Images: Fashion-MNIST is 28x28 grey. Each image is padded by 2 px of
# background (black, as the dataset's own margins) to 32x32, so evaluation
# sees the original pixels, untouched by interpolation; the 16 px input is
# that 32 px image averaged over 2x2 pixels (area resize), i.e. the same
# picture at half the resolution, as in the paper's low-resolution setting.
# The grey channel becomes three identical ones in the data preprocessor:
# mean and std have three entries and broadcast over the single channel, so
# the models see B x 3 x H x W as on colour images.
_base_ = ['../../_base_/default_runtime.py']

data_root = 'data/fashion_mnist'
arch = dict(
    embed_dims=192, num_layers=6, num_heads=3, feedforward_channels=768)
patch_size = 4
# Mean and std of the padded training images' grey levels.
data_preprocessor = dict(mean=[72.94] * 3, std=[90.02] * 3, to_rgb=False)

# pad_if_needed pads 28 -> 32 symmetrically; the crop is then the whole image.
pad_to_32 = dict(type='RandomCrop', crop_size=32, pad_if_needed=True)
to_16px = dict(
    type='Resize', scale=(16, 16), interpolation='area', backend='cv2')
flip = dict(type='RandomFlip', prob=0.5, direction='horizontal')
pretrain_pipeline_32px = [pad_to_32, flip, dict(type='PackInputs')]
pretrain_pipeline_16px = [pad_to_32, to_16px, flip, dict(type='PackInputs')]

fashion_mnist = dict(
    type='FashionMNIST',
    data_root=data_root,
    data_prefix='',
    split='train',
    download=False)
train_dataloader = dict(
    batch_size=128,
    # The pipeline is a few array operations per 28x28 image: worker
    # processes would cost more than they save on a few cores.
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(fashion_mnist, pipeline=pretrain_pipeline_32px))

# AdamW (0.9, 0.95) as in the paper, lr 1e-3 for batch 128 (the paper's
# scaling rule gives 7.5e-4; 1e-3 trained this small ViT a little faster),
# linear warm-up over the first 5% of the iterations, then cosine to 0.
max_iters = 2000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
        }))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=False,
        begin=0,
        end=max_iters // 20),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - max_iters // 20,
        eta_min=0.,
        by_epoch=False,
        begin=max_iters // 20,
        end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
auto_scale_lr = dict(base_batch_size=128)

default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(
        by_epoch=False, interval=max_iters, max_keep_ckpts=1, save_last=True))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, diff_rank_seed=True)
