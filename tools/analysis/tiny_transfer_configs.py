"""Tiny versions of the transfer benchmark configs for CPU runs (the tests
and the CPU form of tools/analysis/gpu_check.py): the same models and
pipelines with small backbones, 128 px images and fewer RoIs."""
import copy
from typing import Sequence

from mmengine.config import Config


def shrink_detection_config(cfg: Config, arch: dict,
                            dims: Sequence[int]) -> None:
    """Shrink the Mask R-CNN config in place: Swin ``arch`` (window 7 as in
    the config) with stage widths ``dims``, 128 px LSJ crops, fewer RoIs.
    """
    size = (128, 128)
    model = cfg.model
    model.backbone.arch = copy.deepcopy(arch)
    model.neck.in_channels = list(dims)
    model.data_preprocessor.batch_augments[0].size = size
    model.train_cfg.rpn_proposal.max_per_img = 100
    model.train_cfg.rcnn.sampler.num = 64
    model.test_cfg.rpn.max_per_img = 50
    for t in cfg.train_dataloader.dataset.dataset.pipeline:
        if t['type'] == 'RandomResize':
            t['scale'] = size
        elif t['type'] == 'RandomCrop':
            t['crop_size'] = size
        elif t['type'] == 'Pad':
            t['size'] = size
    cfg.test_dataloader.dataset.pipeline[1].scale = size  # Resize


def shrink_segmentation_config(cfg: Config, arch: dict) -> None:
    """Shrink the UperNet config in place: ViT ``arch`` (4 blocks or more)
    on 128 px crops, test images resized to 192 px and slid over in 2 x 2
    windows of 128 px."""
    crop = (128, 128)
    dims = arch['embed_dims']
    model = cfg.model
    model.backbone.arch = copy.deepcopy(arch)
    model.backbone.img_size = crop
    model.backbone.out_indices = [0, 1, 2, 3]
    model.data_preprocessor.size = crop
    model.neck.embed_dim = dims
    model.decode_head.in_channels = [dims] * 4
    model.decode_head.channels = dims
    model.auxiliary_head.in_channels = dims
    model.auxiliary_head.channels = 32
    cfg.optim_wrapper.paramwise_cfg.num_layers = arch['num_layers']
    model.test_cfg = dict(mode='slide', crop_size=crop, stride=(85, 85))
    for t in cfg.train_dataloader.dataset.pipeline:
        if t['type'] == 'RandomResize':
            t['scale'] = (512, 128)
        elif t['type'] == 'RandomCrop':
            t['crop_size'] = crop
    cfg.test_dataloader.dataset.pipeline[1].scale = (768, 192)
