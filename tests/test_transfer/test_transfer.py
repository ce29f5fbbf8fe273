"""FastMIM checkpoints transfer: a few pre-training iterations of a tiny Swin
and a tiny ViT, then Mask R-CNN (COCO format) and UperNet (ADE20K format)
built from this toolkit's benchmark configs start from them, train 2
iterations through tools/train.py and are evaluated by tools/test.py with
CocoMetric / IoUMetric."""
import copy
import math
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import HOOKS, DefaultScope, init_default_scope
from mmengine.runner import Runner

from fastmim_mm.datasets import make_ade20k, make_coco_instances
from fastmim_mm.datasets.synthetic_downstream import coco_class_names
from fastmim_mm.testing import (shrink_detection_config,
                                shrink_segmentation_config)

from ..conftest import TINY_SWIN, TINY_VIT, load_tool, runner_config
from .test_benchmark_configs import DET, SEG

# Tiny Swin pre-trained as the Swin-B recipe: 128 px, window 4 (stages at 32,
# 16, 8, 4 tokens), 32-pixel mask blocks; detection then uses window 7, so
# the relative-position tables are resized on load as with real checkpoints.
PRETRAIN_SWIN = dict(
    TINY_SWIN,
    input_size=128,
    backbone=dict(
        TINY_SWIN['backbone'],
        img_size=128,
        stage_cfgs=dict(block_cfgs=dict(window_size=4))))
SWIN_ARCH = PRETRAIN_SWIN['backbone']['arch']
SWIN_DIMS = [32, 64, 128, 256]

# Tiny ViT with 4 blocks (UperNet takes 4 of them), pre-trained at 64 px
# (4 x 4 patches); segmentation crops are 128 px, so pos_embed is resized.
VIT_ARCH = dict(
    embed_dims=64, num_layers=4, num_heads=2, feedforward_channels=128)
PRETRAIN_VIT = dict(
    TINY_VIT, backbone=dict(TINY_VIT['backbone'], arch=VIT_ARCH))


@HOOKS.register_module(force=True)
class BackboneSnapshotHook(Hook):
    """Keeps the backbone weights as training starts (after the Runner
    initialised the model, i.e. loaded the pre-trained backbone)."""
    snapshots: list = []

    def before_train(self, runner):
        state = runner.model.backbone.state_dict()
        BackboneSnapshotHook.snapshots.append(
            {k: v.detach().clone()
             for k, v in state.items()})


@pytest.fixture(autouse=True)
def _restore_scope():
    """Runners here switch the default registry scope to mmdet / mmseg;
    give the other tests back the scope they started with."""
    before = DefaultScope.get_current_instance()
    yield
    if before is not None:
        init_default_scope(before.scope_name)


def _pretrain(tmp_path_factory, image_folder, model, input_size):
    work_dir = tmp_path_factory.mktemp('pretrain')
    cfg = runner_config(
        work_dir, image_folder, model=model, input_size=input_size,
        batch_size=4, max_epochs=1)
    cfg.custom_hooks = []
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 4
    ckpt = torch.load(
        str(work_dir / 'epoch_1.pth'), map_location='cpu', weights_only=True)
    return str(work_dir / 'epoch_1.pth'), ckpt['state_dict']


@pytest.fixture(scope='module')
def swin_checkpoint(tmp_path_factory, image_folder):
    return _pretrain(tmp_path_factory, image_folder, PRETRAIN_SWIN, 128)


@pytest.fixture(scope='module')
def vit_checkpoint(tmp_path_factory, image_folder):
    return _pretrain(tmp_path_factory, image_folder, PRETRAIN_VIT, 64)


def _common(cfg, work_dir):
    name = f'test_{uuid.uuid4().hex[:8]}'
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = name
    cfg.visualizer.name = name
    cfg.log_level = 'WARNING'
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.custom_hooks = [dict(type='BackboneSnapshotHook')]
    cfg.randomness = dict(seed=0)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False


def detection_config(work_dir, data_root, checkpoint) -> Config:
    """The Mask R-CNN benchmark config with a tiny Swin (the pre-training
    one's dims, window 7 as in the config) on 128 x 96 COCO-format data
    (kept at 128 x 96 by the test Resize)."""
    cfg = Config.fromfile(str(DET))
    _common(cfg, work_dir)
    shrink_detection_config(cfg, SWIN_ARCH, SWIN_DIMS)
    classes = coco_class_names(2)
    model = cfg.model
    model.backbone.init_cfg.checkpoint = checkpoint
    model.roi_head.bbox_head.num_classes = len(classes)
    model.roi_head.mask_head.num_classes = len(classes)
    model.test_cfg.rcnn.max_per_img = 20
    model.test_cfg.rcnn.score_thr = 0.01

    train = cfg.train_dataloader
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
    """The UperNet benchmark config with a tiny ViT (the pre-training one's
    dims) on 128 px ADE20K-format data, 128 px crops."""
    cfg = Config.fromfile(str(SEG))
    _common(cfg, work_dir)
    shrink_segmentation_config(cfg, VIT_ARCH)
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    train = cfg.train_dataloader
    train.batch_size = 2
    train.dataset.data_root = data_root
    test = cfg.test_dataloader
    test.dataset.data_root = data_root
    cfg.val_dataloader = test
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2)
    return cfg


def _run_and_test(cfg, tmp_path):
    """Train with tools/train.py, then evaluate the last checkpoint with
    tools/test.py, both from the dumped config."""
    BackboneSnapshotHook.snapshots.clear()
    train_cfg = copy.deepcopy(cfg)
    # Evaluation is tools/test.py's part below.
    train_cfg.val_cfg = train_cfg.val_dataloader = None
    train_cfg.val_evaluator = None
    train_file = tmp_path / 'train_config.py'
    train_cfg.dump(str(train_file))
    load_tool('train.py').main([str(train_file)])
    loaded = BackboneSnapshotHook.snapshots[-1]
    last = (tmp_path / 'train').joinpath(
        (tmp_path / 'train' / 'last_checkpoint').read_text().strip()
        .split('/')[-1])
    assert torch.load(str(last), weights_only=True)['meta']['iter'] == 2
    test_cfg = copy.deepcopy(cfg)
    test_cfg.experiment_name = cfg.experiment_name + '_test'
    test_cfg.visualizer.name = test_cfg.experiment_name
    test_cfg.custom_hooks = []
    config_file = tmp_path / 'config.py'
    test_cfg.dump(str(config_file))
    metrics = load_tool('test.py').main([
        str(config_file),
        str(last), '--work-dir',
        str(tmp_path / 'test'), '--out',
        str(tmp_path / 'predictions.pkl')
    ])
    assert (tmp_path / 'predictions.pkl').stat().st_size > 0
    return loaded, metrics


def _assert_equal(model_state, ckpt, keys):
    for key in keys:
        assert torch.equal(model_state[key], ckpt[f'backbone.{key}']), key


def test_swin_checkpoint_into_mask_rcnn(swin_checkpoint, tmp_path,
                                        tmp_path_factory, capsys):
    path, ckpt = swin_checkpoint
    coco = make_coco_instances(
        str(tmp_path_factory.mktemp('coco')), num_images=4,
        image_size=(128, 96), num_classes=2)
    cfg = detection_config(tmp_path / 'train', coco, path)
    loaded, metrics = _run_and_test(cfg, tmp_path)

    # The backbone the Runner trained started from the FastMIM weights.
    _assert_equal(loaded, ckpt, [
        'patch_embed.projection.weight',
        'patch_embed.norm.weight',
        'stages.0.blocks.0.attn.w_msa.qkv.weight',
        'stages.2.blocks.0.ffn.layers.0.0.weight',
        'stages.3.blocks.0.attn.w_msa.proj.bias',
        'stages.2.downsample.reduction.weight',
        'norm3.weight',
    ])
    # Window 4 -> 7: the tables were resized (7^2 -> 13^2 offsets), not
    # left at their random initialisation.
    key = 'stages.1.blocks.0.attn.w_msa.relative_position_bias_table'
    src, dst = ckpt[f'backbone.{key}'], loaded[key]
    assert src.shape == (7 * 7, 2) and dst.shape == (13 * 13, 2)
    centre = dst.view(13, 13, 2)[6, 6]
    torch.testing.assert_close(centre, src.view(7, 7, 2)[3, 3])

    print('Mask R-CNN metrics after 2 iterations:', metrics)
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP',
                'coco/segm_mAP_50'):
        assert key in metrics and math.isfinite(metrics[key]), key
        assert 0 <= metrics[key] <= 1 or metrics[key] == -1


def test_vit_checkpoint_into_upernet(vit_checkpoint, tmp_path,
                                     tmp_path_factory):
    path, ckpt = vit_checkpoint
    ade = make_ade20k(
        str(tmp_path_factory.mktemp('ade')), num_images=4,
        image_size=(128, 128))
    cfg = segmentation_config(tmp_path / 'train', ade, path)
    loaded, metrics = _run_and_test(cfg, tmp_path)

    _assert_equal(loaded, ckpt, [
        'patch_embed.projection.weight',
        'cls_token',
        'layers.0.attn.qkv.weight',
        'layers.3.attn.qkv.bias',
        'layers.2.ffn.layers.0.0.weight',
        'layers.1.ln2.weight',
    ])
    # 64 px -> 128 px: pos_embed resized from 4 x 4 to 8 x 8 patches; the
    # class token's position is kept.
    src, dst = ckpt['backbone.pos_embed'], loaded['pos_embed']
    assert src.shape == (1, 1 + 16, 64) and dst.shape == (1, 1 + 64, 64)
    torch.testing.assert_close(dst[:, 0], src[:, 0])

    print('UperNet metrics after 2 iterations:', metrics)
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert key in metrics and math.isfinite(metrics[key]), key
        assert 0 <= metrics[key] <= 100
