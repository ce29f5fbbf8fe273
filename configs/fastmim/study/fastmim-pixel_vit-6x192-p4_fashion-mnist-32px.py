# Target ablation at 32 px: per-block normalised pixels instead of HOG.
_base_ = './fastmim-hog_vit-6x192-p4_fashion-mnist-32px.py'

model = dict(
    neck=dict(out_channels=48),
    target_generator=dict(_delete_=True, type='FastMIMPixelGenerator'))
