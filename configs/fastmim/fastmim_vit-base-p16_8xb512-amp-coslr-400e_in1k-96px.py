# Resolution ablation: FastMIM ViT-B/16 pre-trained at 96 px (paper: a wide
# range of pre-training resolutions fine-tunes to similar accuracy; HOG is
# more stable than RGB across resolutions).
_base_ = './fastmim_vit-base-p16_8xb512-amp-coslr-400e_in1k-128px.py'

model = dict(input_size=96, backbone=dict(img_size=96))
train_dataloader = dict(
    dataset=dict(
        dataset=dict(pipeline=[
            dict(
                type='DecodeRandomResizedCrop',
                scale=96,
                crop_ratio_range=(0.2, 1.0),
                interpolation='bicubic'),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackInputs'),
        ])))
