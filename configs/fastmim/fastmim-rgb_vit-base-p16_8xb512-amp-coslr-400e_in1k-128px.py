# Target ablation: regress per-block normalised RGB pixels instead of HOG
# (16 x 16 x 3 = 768 values per block).
_base_ = './fastmim_vit-base-p16_8xb512-amp-coslr-400e_in1k-128px.py'

model = dict(
    neck=dict(out_channels=768),
    target_generator=dict(_delete_=True, type='FastMIMPixelGenerator'))
