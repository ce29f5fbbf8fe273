# ADE20K transfer of a FastMIM ViT-B/16: UperNet on a BEiT-style ViT,
# 512 x 512 crops, 8 GPUs x 2 images, 160k iterations, sliding-window test.
# Paper: 49.5 mIoU single-scale (ViT-B pre-trained 800 epochs at 128 px, then
# fine-tuned 100 epochs on ImageNet-1k).
# Recipe: the reference's mmseg-v0.28/configs/vit/fastmim_vit_base_cfg.py,
# value by value, on MMSegmentation 1.2's UperNet-BEiT, ADE20K and 160k
# configs.
#
# It starts from the ImageNet-fine-tuned checkpoint, as the paper does:
#   tools/dist_train.sh configs/fastmim/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py 8  # noqa: E501
#   tools/dist_train.sh <this file> 8
# (`--cfg-options model.backbone.init_cfg.checkpoint=X.pth` for another one:
# a pre-training checkpoint or a converted official fine-tuned one load the
# same way, prefix 'backbone.').
#
# The backbone is the reference's BEiT ViT (MMPretrain's BEiTViT): the
# checkpoint's ViT with its absolute position embedding (resized to 32 x 32
# patches on load) and full qkv bias, plus a relative position bias table
# (zeros) and layer scales (1.0) per block, new; FastMIMBEiTViT logs them
# when it loads. Features of blocks [1, 3, 9, 11] (0-based, as the
# reference counts) go through Feature2Pyramid, the reference's fpn1-fpn4
# (deconvolutions x4 / x2, identity, max-pool).
#
# Layer decay with MMSegmentation's constructor, the one the reference uses:
# patch embedding, class token and position embedding 0.75^13, block i
# 0.75^(12 - i), neck and heads 1; no weight decay on 1-D parameters and
# biases (its name test for pos_embed / cls_token never matches, so they
# decay, in the reference too).
#
# Remaining deviation: MMEngine's schedulers end one iteration earlier than
# MMCV 1.x's (see the schedule below).
_base_ = [
    'mmseg::_base_/models/upernet_beit.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(
    imports=['mmpretrain.models', 'fastmim_mm'], allow_failed_imports=False)

# ImageNet fine-tuning of the FastMIM pre-training checkpoint:
checkpoint = 'work_dirs/vit-base-p16_8xb128-coslr-100e_in1k/epoch_100.pth'
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        _delete_=True,
        type='mmpretrain.FastMIMBEiTViT',
        arch='base',
        img_size=crop_size,
        patch_size=16,
        out_indices=[1, 3, 9, 11],
        out_type='featmap',
        final_norm=False,
        drop_path_rate=0.1,
        bias=True,
        use_abs_pos_emb=True,
        use_rel_pos_bias=True,
        layer_scale_init_value=1.0,
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    auxiliary_head=dict(in_index=3),  # block 11
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

train_dataloader = dict(batch_size=2)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=3e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='LearningRateDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=12, decay_rate=0.75))
# Poly decay (power 1, to 0) over all 160k iterations, multiplied by a
# linear warm-up from 1e-6 over the first 1500: MMCV 1.x's poly policy with
# warm-up, as the reference ran it (MMEngine ends each one iteration
# earlier: full lr at iteration 1499, 0 at the last one).
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(
        type='PolyLR',
        power=1.0,
        eta_min=0.0,
        begin=0,
        end=160000,
        by_epoch=False),
]
# `tools/train.py --auto-scale-lr` rescales lr for another total batch.
auto_scale_lr = dict(enable=False, base_batch_size=16)
