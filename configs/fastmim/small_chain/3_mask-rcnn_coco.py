# Small chain, step 3 (COCO): the Mask R-CNN config
# (../benchmarks/mmdetection/mask-rcnn_fastmim-swin-base-w7_fpn_rpn-2conv_4conv1fc_syncbn-all_8xb4-lsj-scp-3x_coco.py)  # noqa: E501
# with the Swin of step 2 (window 7), 128 px large-scale-jitter crops and
# fewer RoIs, on the COCO-format images of data/small_chain/coco (COCO's
# class names, as tools/misc/make_downstream_datasets.py writes them): 1
# epoch of 2 iterations, then one evaluation. It starts from step 2's last
# checkpoint; another one:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH.pth
# See docs/en/user_guides/small_chain.md.
_base_ = '../benchmarks/mmdetection/mask-rcnn_fastmim-swin-base-w7_fpn_rpn-2conv_4conv1fc_syncbn-all_8xb4-lsj-scp-3x_coco.py'  # noqa: E501

checkpoint = 'work_dirs/2_finetune_swin/epoch_1.pth'
data_root = 'data/small_chain/coco/'
image_size = (128, 128)
model = dict(
    data_preprocessor=dict(batch_augments=[
        dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)
    ]),
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=32,
            depths=[1, 1, 1, 1],
            num_heads=[1, 2, 4, 8]),
        with_cp=False,
        init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(in_channels=[32, 64, 128, 256]),
    train_cfg=dict(
        rpn_proposal=dict(max_per_img=100), rcnn=dict(sampler=dict(num=64))),
    # Trained for 2 iterations, the model scores every class about 1 / 81.
    test_cfg=dict(
        rpn=dict(max_per_img=50), rcnn=dict(score_thr=0.0, max_per_img=20)))

load_pipeline = _base_.train_dataloader.dataset.dataset.pipeline
load_pipeline[2].scale = image_size  # RandomResize
load_pipeline[3].crop_size = image_size  # RandomCrop
load_pipeline[6].size = image_size  # Pad
test_pipeline = _base_.test_dataloader.dataset.pipeline
test_pipeline[1].scale = (208, 128)  # Resize, the config's 1666:1024
# No loader workers: on a CPU the model's step is the cost, and worker
# processes would compete with it for the cores.
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    dataset=dict(dataset=dict(data_root=data_root, pipeline=load_pipeline)))
val_dataloader = dict(
    num_workers=0, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1))
