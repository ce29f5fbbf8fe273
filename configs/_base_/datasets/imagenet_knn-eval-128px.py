# Online kNN evaluation of an ImageNet-1k pre-training (KNNValLoop): every
# N epochs and after the last, the frozen backbone (eval mode, no gradients,
# the autocast of training) embeds a memory set of 100 training images per
# class and the 50,000 validation images, at 128 px (short edge 146, centre
# crop); each validation image is classified by its 20 nearest memory
# images (cosine similarity, votes exp(sim / 0.07)). Logged as knn/top1,
# knn/top5 and the few-shot knn/{1,5,10}shot_top1 and _top5 (the first n
# memory images of each class), in percent, like any MMEngine metric: the
# log, vis_data/scalars.json, TensorBoard with TensorboardVisBackend, and
# tools/analysis/plot_curves.py WORK_DIR to draw them with loss and lr.
#
# To switch it on, write the memory set once:
#   python tools/misc/make_knn_memory_set.py data/imagenet --per-class 100
# (writes data/imagenet/meta/knn_memory_100.txt), then a config such as
#   _base_ = [
#       './fastmim_vit-base-p16_8xb512-amp-coslr-400e_in1k-128px.py',
#       '../_base_/datasets/imagenet_knn-eval-128px.py',
#   ]
#   train_cfg = dict(val_interval=10)
#   default_hooks = dict(checkpoint=dict(save_best='knn/top1'))
# (save_best is optional). Queries: a fixed part of the validation images
# instead of all 50,000, e.g. 10 per class:
#   python tools/misc/make_knn_memory_set.py data/imagenet --split val \
#       --per-class 10
# and val_dataloader.dataset.queries.ann_file='meta/knn_val_10.txt'.
# Another resolution: replace knn_pipeline's sizes in the child config's
# val_dataloader.dataset.memory/queries.pipeline.
#
# Cost of one evaluation, ViT-B/16 at 128 px: about 2 GPU-minutes
# (150,000 images), i.e. about 15-20 s on the recipe's 8 GPUs, 0.6 % of the
# training time at val_interval=10. Estimated from CPU throughput: on a CPU
# (2 threads, fp32) the forward pass of the backbone alone costs 1/3.0 of a
# FastMIM training step per image (67-72 ms against 207-214 ms; the
# training step adds the HOG target, decoder, backward and optimiser);
# the paper's 304 GPU-hours for 400 epochs are 2.14 ms of GPU time per
# image per training step, so a forward pass is about 0.7 ms, 107 GPU-s for
# 150,000 images. Decoding and resizing take 3-4 ms per image on one core
# (500x375 JPEGs of 68 KB), 50 s with 10 loader workers, overlapped with
# the GPU. The similarities (50,000 x 100,000 x 768, 7.7 TFLOP) are
# computed on the GPU of the main process, under a second; on a CPU they
# would take about a minute at 150 GFLOP/s.
knn_pipeline = [
    dict(type='SafeLoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=146,
        edge='short',
        backend='pillow',
        interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=128),
    dict(type='PackInputs'),
]
val_dataloader = dict(
    batch_size=256,
    num_workers=10,
    persistent_workers=False,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='KNNEvalDataset',
        memory=dict(
            type='ImageNet',
            data_root='data/imagenet/',
            split='train',
            ann_file='meta/knn_memory_100.txt',
            pipeline=knn_pipeline),
        queries=dict(
            type='ImageNet',
            data_root='data/imagenet/',
            split='val',
            pipeline=knn_pipeline)))
val_cfg = dict(type='KNNValLoop')
val_evaluator = dict(
    type='KNNAccuracy', k=20, temperature=0.07, few_shot=(1, 5, 10))
