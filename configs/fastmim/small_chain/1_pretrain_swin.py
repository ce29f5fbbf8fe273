# Small chain, step 1 (Swin): the Swin-B pre-training config
# (../fastmim_swin-base-w4_8xb256-amp-coslr-400e_in1k-128px.py) with a
# 4-stage Swin of one block per stage, 32 wide, on the 16 images of
# data/small_chain/imagenet: 1 epoch of 2 iterations at 128 px, window 4 as
# in the paper. See docs/en/user_guides/small_chain.md.
_base_ = '../fastmim_swin-base-w4_8xb256-amp-coslr-400e_in1k-128px.py'

model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=32,
            depths=[1, 1, 1, 1],
            num_heads=[1, 2, 4, 8])),
    neck=dict(in_channels=256, embed_dims=32, num_layers=1, num_heads=2))

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(dataset=dict(data_root='data/small_chain/imagenet')))
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1))
