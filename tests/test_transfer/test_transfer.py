"""The transfer configs shrunk to tiny backbones (used by the tests of mmcv's
ops and of the transfers in two processes too), and pre-training
checkpoints loading into them. The whole chain, pre-training ->
fine-tuning -> transfer -> test, runs as the documentation writes it in
test_small_chain.py."""
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.utils import import_modules_from_strings
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from synthetic_downstream import coco_class_names
from tiny_transfer_configs import (shrink_detection_config,
                                   shrink_segmentation_config)

from fastmim_mm.engine import CheckedLoading
from ..conftest import TINY_SWIN, TINY_VIT
from .test_benchmark_configs import DET, SEG, _registries

# Tiny Swin pre-trained as the Swin-B recipe: 128 px, window 4 (stages at 32,
# 16, 8, 4 tokens), 32-pixel mask blocks; fine-tuning and detection use
# window 7, so the relative-position tables are resized as with real ones.
PRETRAIN_SWIN = dict(
    TINY_SWIN,
    input_size=128,
    backbone=dict(
        TINY_SWIN['backbone'],
        img_size=128,
        stage_cfgs=dict(block_cfgs=dict(window_size=4))))
SWIN_ARCH = PRETRAIN_SWIN['backbone']['arch']
SWIN_DIMS = [32, 64, 128, 256]

# Tiny ViT with 4 blocks (UperNet takes 4 of them), pre-trained and
# fine-tuned at 64 px (4 x 4 patches); segmentation crops are 128 px, so
# pos_embed is resized.
VIT_ARCH = dict(
    embed_dims=64, num_layers=4, num_heads=2, feedforward_channels=128)
PRETRAIN_VIT = dict(
    TINY_VIT, backbone=dict(TINY_VIT['backbone'], arch=VIT_ARCH))


def _quiet(cfg, work_dir):
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'test_{uuid.uuid4().hex[:8]}'
    if 'visualizer' in cfg:
        cfg.visualizer.name = cfg.experiment_name
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.randomness = dict(seed=0)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(key) is not None:
            cfg[key].num_workers = 0
            cfg[key].persistent_workers = False


def _backbone(state):
    return {
        k[len('backbone.'):]: v
        for k, v in state.items() if k.startswith('backbone.')
    }


def _transfer_common(cfg, work_dir, checkpoint):
    _quiet(cfg, work_dir)
    cfg.log_level = 'INFO'  # the backbone's load report
    cfg.model.backbone.init_cfg.checkpoint = checkpoint


def detection_config(work_dir, data_root, checkpoint) -> Config:
    """The Mask R-CNN config with the tiny Swin (window 7, as in the config)
    on 128 x 96 COCO-format data, 2 iterations."""
    cfg = Config.fromfile(str(DET))
    _transfer_common(cfg, work_dir, checkpoint)
    shrink_detection_config(cfg, SWIN_ARCH, SWIN_DIMS)
    classes = coco_class_names(2)
    model = cfg.model
    model.roi_head.bbox_head.num_classes = len(classes)
    model.roi_head.mask_head.num_classes = len(classes)
    model.test_cfg.rcnn.max_per_img = 20
    model.test_cfg.rcnn.score_thr = 0.01

    train = cfg.train_dataloader
    train.batch_size = 2
    train.dataset.dataset.data_root = data_root
    train.dataset.dataset.metainfo = dict(classes=classes)
    test = cfg.test_dataloader
    test.dataset.data_root = data_root
    test.dataset.metainfo = dict(classes=classes)
    cfg.val_dataloader = test
    cfg.test_evaluator.ann_file = \
        f'{data_root}/annotations/instances_val2017.json'
    cfg.val_evaluator = cfg.test_evaluator
    # 4 images, batch 2: one epoch is 2 iterations.
    cfg.train_cfg.max_epochs = 1
    return cfg


def segmentation_config(work_dir, data_root, checkpoint) -> Config:
    """The UperNet config with the tiny ViT on 128 px ADE20K-format data,
    128 px crops, 2 iterations."""
    cfg = Config.fromfile(str(SEG))
    _transfer_common(cfg, work_dir, checkpoint)
    shrink_segmentation_config(cfg, VIT_ARCH)
    train = cfg.train_dataloader
    train.dataset.data_root = data_root
    test = cfg.test_dataloader
    test.dataset.data_root = data_root
    cfg.val_dataloader = test
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2)
    return cfg


@pytest.mark.parametrize('task', ['detection', 'segmentation'])
def test_pretraining_checkpoints_still_load(task, tmp_path):
    """Skipping fine-tuning: a FastMIM pre-training checkpoint (encoder,
    decoder, mask token) loads into both transfer models with every encoder
    tensor used; Swin's window-4 tables are resized to window 7, the ViT's
    128-px position embedding to the crop (its final norm is not used)."""
    swin = task == 'detection'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        algorithm = PRETRAIN_MODELS.build(
            PRETRAIN_SWIN if swin else PRETRAIN_VIT)
        algorithm.init_weights()
    path = str(tmp_path / 'pretrained.pth')
    torch.save(dict(state_dict=algorithm.state_dict()), path)
    pretrained = _backbone(algorithm.state_dict())
    build_config = detection_config if swin else segmentation_config
    cfg = build_config(tmp_path, str(tmp_path), path)
    import_modules_from_strings(**cfg.custom_imports)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = _registries(cfg.default_scope).build(cfg.model)
        with CheckedLoading():  # as FastMIMRunner loads
            model.init_weights()
    arrived = model.backbone.state_dict()

    resized = {'pos_embed'} | {
        k
        for k in pretrained if 'relative_position' in k  # window 4 -> 7
    }
    unused = set() if swin else {'ln1.weight', 'ln1.bias'}
    assert set(pretrained) - unused <= set(arrived)
    for key in set(pretrained) - resized - unused:
        assert torch.equal(arrived[key], pretrained[key]), key
    if swin:
        key = 'stages.1.blocks.0.attn.w_msa.relative_position_bias_table'
        src, dst = pretrained[key], arrived[key]
        assert src.shape == (7 * 7, 2) and dst.shape == (13 * 13, 2)
        torch.testing.assert_close(
            dst.view(13, 13, 2)[6, 6],
            src.view(7, 7, 2)[3, 3])
    else:
        src, dst = pretrained['pos_embed'], arrived['pos_embed']
        assert src.shape == (1, 1 + 16, 64) and dst.shape == (1, 1 + 64, 64)
        torch.testing.assert_close(
            dst, resize_pos_embed(src, (4, 4), (8, 8), 'bicubic', 1))
