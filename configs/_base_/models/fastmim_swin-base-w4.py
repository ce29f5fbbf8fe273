# FastMIM Swin-B at 128 px, window 4: stages at 32, 16, 8 and 4 tokens per
# side; 32-pixel mask blocks match the last stage; 4-block decoder.
model = dict(
    type='FastMIM',
    input_size=128,
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='SwinTransformer',
        arch='base',
        img_size=128,
        stage_cfgs=dict(block_cfgs=dict(window_size=4)),
        drop_path_rate=0.1,
        out_indices=(3, ),
        init_cfg=[
            dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
            dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
        ]),
    neck=dict(
        type='FastMIMNeck',
        in_channels=1024,
        out_channels=432,  # 27 HOG channels x (32 / 8)^2 cells per block
        embed_dims=256,
        num_layers=4,
        num_heads=8),
    # MSE over each block's target values, averaged over the masked blocks.
    head=dict(
        type='MIMHead',
        loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    target_generator=dict(
        type='FastMIMHOGGenerator', nbins=9, pool=8, gaussian_window=0),
    mask_generator=dict(
        type='FastMIMMaskGenerator', mask_ratio=0.75, mask_patch_size=32))
