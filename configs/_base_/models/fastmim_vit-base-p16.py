# FastMIM ViT-B/16 at 128 px: 8x8 patch tokens + class token, fixed 2-D
# sin-cos position embedding, 16-pixel mask blocks, HOG target, a 1-block
# decoder of width 256 that runs over all tokens (class token included).
model = dict(
    type='FastMIM',
    input_size=128,
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='FastMIMViT',
        # The reference pre-trains ViT-B with 6 attention heads (fine-tuning
        # uses 12); the weights have the same shapes either way. Kept, so
        # official checkpoints behave here as they did there.
        arch=dict(
            embed_dims=768,
            num_layers=12,
            num_heads=6,
            feedforward_channels=3072),
        img_size=128,
        patch_size=16,
        drop_path_rate=0.),
    neck=dict(
        type='FastMIMNeck',
        in_channels=768,
        out_channels=108,  # 27 HOG channels x (16 / 8)^2 cells per block
        embed_dims=256,
        num_layers=1,
        num_heads=8,
        num_prefix_tokens=1),
    # MSE over each block's target values, averaged over the masked blocks.
    head=dict(
        type='MIMHead',
        loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    target_generator=dict(
        type='FastMIMHOGGenerator', nbins=9, pool=8, gaussian_window=0),
    mask_generator=dict(
        type='FastMIMMaskGenerator', mask_ratio=0.75, mask_patch_size=16))
