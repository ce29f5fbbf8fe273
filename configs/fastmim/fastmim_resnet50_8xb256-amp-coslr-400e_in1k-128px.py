# FastMIM is generic: the same algorithm pre-trains a CNN. ResNet-50 at
# 128 px ends at stride 32 (4 x 4 features), so the Swin-B recipe applies as
# it is: 32-pixel mask blocks, 27 x (32 / 8)^2 = 432 HOG values per block,
# total batch 2048, 400 epochs; only the backbone and a 1-block decoder
# differ.
_base_ = './fastmim_swin-base-w4_8xb256-amp-coslr-400e_in1k-128px.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=50,
        out_indices=(3, ),
        norm_cfg=dict(type='SyncBN', requires_grad=True)),
    neck=dict(in_channels=2048, num_layers=1))
