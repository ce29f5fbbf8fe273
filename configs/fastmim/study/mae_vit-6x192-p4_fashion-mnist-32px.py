# MMPretrain's own MAE at 32 px, the peer a user would otherwise pick: the
# same encoder, masking 75% of the 4-px patches (the encoder sees only the
# visible ones), a decoder of the FastMIM arms' size (one block, width 128)
# and MAE's normalised-pixel loss.
_base_ = [
    'mmpretrain::_base_/models/mae_vit-base-p16.py',
    './fashion-mnist_base.py',
]

model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        _delete_=True,  # replaces arch='b' by the study's dict
        type='MAEViT',
        arch={{_base_.arch}},
        img_size=32,
        patch_size={{_base_.patch_size}},
        mask_ratio=0.75),
    neck=dict(
        num_patches=64,
        patch_size={{_base_.patch_size}},
        embed_dim=192,
        decoder_embed_dim=128,
        decoder_depth=1,
        decoder_num_heads=4),
    head=dict(patch_size={{_base_.patch_size}}))
