# Target ablation at 16 px: per-block normalised pixels (3 x 4 x 4 = 48
# values per block) instead of HOG.
_base_ = './fastmim-hog_vit-6x192-p4_fashion-mnist-16px.py'

model = dict(
    neck=dict(out_channels=48),
    target_generator=dict(_delete_=True, type='FastMIMPixelGenerator'))
