# ImageNet-1k pre-training pipeline of FastMIM: RandomResizedCrop to the
# pre-training size with scale (0.2, 1.0) and bicubic resizing, horizontal
# flip, no colour jitter. Normalisation happens in the model's preprocessor.
# DecodeRandomResizedCrop reads, decodes (JPEGs at reduced DCT size where the
# crop allows) and crops in one step, with RandomResizedCrop's box sampling.
# PerSampleSeedSampler and the PerSampleSeedDataset wrapper: a sample's crop
# and flip depend on (seed, epoch, index) only, not on the worker, so a run
# resumed with the persistent workers below repeats the uninterrupted run.
dataset_type = 'ImageNet'
data_root = 'data/imagenet/'
input_size = 128

train_pipeline = [
    dict(
        type='DecodeRandomResizedCrop',
        scale=input_size,
        crop_ratio_range=(0.2, 1.0),
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=512,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='PerSampleSeedSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='PerSampleSeedDataset',
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            split='train',
            pipeline=train_pipeline)))
