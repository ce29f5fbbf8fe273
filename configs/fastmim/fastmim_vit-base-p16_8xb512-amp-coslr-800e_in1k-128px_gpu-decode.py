# FastMIM ViT-B/16 at 128 px with JPEG decoding on the GPU: the loader
# workers only read each file and draw its crop box and flip
# (DeviceDecodeRandomResizedCrop, the same sampling as the CPU path); the
# model's DeviceDecodeDataPreprocessor decodes the batch with nvJPEG
# (torchvision.io.decode_jpeg), crops, resizes (antialiased bicubic) and
# flips on the GPU. Everything else is the 800-epoch ViT-B recipe.
_base_ = './fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px.py'

model = dict(data_preprocessor=dict(type='DeviceDecodeDataPreprocessor'))

train_pipeline = [
    dict(
        type='DeviceDecodeRandomResizedCrop',
        scale={{_base_.input_size}},
        crop_ratio_range=(0.2, 1.0),
        interpolation='bicubic',
        flip_prob=0.5),
    dict(
        type='PackInputs',
        meta_keys=('sample_idx', 'img_path', 'ori_shape', 'img_shape', 'flip',
                   'flip_direction', 'crop_box')),
]
train_dataloader = dict(
    # Byte strings differ in length: batched as lists, not stacked.
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(dataset=dict(pipeline=train_pipeline)))
