# FastMIM with the HOG target at the full 32 px (8x8 patch tokens): the
# resolution the encoder is evaluated at.
_base_ = './fastmim-hog_vit-6x192-p4_fashion-mnist-16px.py'

model = dict(input_size=32, backbone=dict(img_size=32))
train_dataloader = dict(
    dataset=dict(pipeline={{_base_.pretrain_pipeline_32px}}))
