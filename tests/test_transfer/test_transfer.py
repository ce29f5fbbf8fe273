"""The documented chain, tiny: FastMIM pre-training -> ImageNet fine-tuning
-> Mask R-CNN (COCO format) and UperNet (ADE20K format), every step a
tools/train.py process on this toolkit's configs, the transfers evaluated by
a tools/test.py process. The backbone each transfer starts from must be the
fine-tuned one: neither the pre-trained weights nor a random start."""
import json
import math
import os
import subprocess
import sys
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.utils import import_modules_from_strings
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from synthetic_downstream import (coco_class_names, make_ade20k,
                                  make_coco_instances)
from tiny_transfer_configs import (shrink_detection_config,
                                   shrink_segmentation_config)

from fastmim_mm.engine import CheckedLoading, read_checkpoint
from ..conftest import (CONFIG_DIR, ROOT, TINY_SWIN, TINY_VIT, run_train_py,
                        runner_config)
from .test_benchmark_configs import DET, SEG, _registries

TEST_PY = ROOT / 'tools' / 'test.py'
BENCH = CONFIG_DIR / 'fastmim' / 'benchmarks'
SNAPSHOT_HOOK = 'tests.test_transfer.snapshot_hook'

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


def _train(cfg, work_dir):
    """``tools/train.py`` on the config, in a process of its own; returns
    the state dict of the last checkpoint, its path and the process."""
    config = work_dir.parent / f'{work_dir.name}_config.py'
    cfg.dump(str(config))
    result = run_train_py(config, OMP_NUM_THREADS='1')
    assert result.returncode == 0, result.stdout[-3000:] + \
        result.stderr[-3000:]
    last = (work_dir / 'last_checkpoint').read_text().strip()
    state = read_checkpoint(last)
    return state['state_dict'], last, result


def _backbone(state):
    return {
        k[len('backbone.'):]: v
        for k, v in state.items() if k.startswith('backbone.')
    }


def _pretrain(tmp_path_factory, image_folder, model, input_size):
    work_dir = tmp_path_factory.mktemp('pretrain')
    cfg = runner_config(
        work_dir,
        image_folder,
        model=model,
        input_size=input_size,
        batch_size=8,
        max_epochs=1)
    cfg.custom_hooks = []
    state, _, _ = _train(cfg, work_dir)
    return state


def _finetune(tmp_path_factory, image_folder, name, pretrained, backbone,
              head_channels, size):
    """Two iterations of a fine-tuning config, from ``pretrained``."""
    work_dir = tmp_path_factory.mktemp('finetune')
    path = str(work_dir.parent / f'{work_dir.name}_pretrained.pth')
    torch.save(dict(state_dict=pretrained), path)
    cfg = Config.fromfile(str(BENCH / name))
    _quiet(cfg, work_dir)
    cfg.model.backbone.update(backbone)
    cfg.model.backbone.init_cfg.checkpoint = path
    cfg.model.head.in_channels = head_channels
    pipeline = cfg.train_dataloader.dataset.dataset.pipeline
    pipeline[1].scale = size  # RandomResizedCrop
    cfg.train_dataloader.batch_size = 8
    cfg.train_dataloader.pin_memory = False
    cfg.train_dataloader.dataset.dataset = dict(
        type='CustomDataset',
        data_root=image_folder,
        ann_file='meta/train.txt',
        data_prefix='train',
        pipeline=pipeline)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.train_cfg.max_epochs = 1
    return _train(cfg, work_dir)[:2]


@pytest.fixture(scope='module')
def swin_chain(tmp_path_factory, image_folder):
    pretrained = _pretrain(tmp_path_factory, image_folder, PRETRAIN_SWIN, 128)
    finetuned, path = _finetune(
        tmp_path_factory, image_folder,
        'swin-base-w7_8xb128-coslr-100e_in1k.py', pretrained,
        dict(arch=SWIN_ARCH, img_size=112,
             pad_small_map=True), SWIN_DIMS[-1], 112)
    return _backbone(pretrained), _backbone(finetuned), path


@pytest.fixture(scope='module')
def vit_chain(tmp_path_factory, image_folder):
    pretrained = _pretrain(tmp_path_factory, image_folder, PRETRAIN_VIT, 64)
    finetuned, path = _finetune(tmp_path_factory, image_folder,
                                'vit-base-p16_8xb128-coslr-100e_in1k.py',
                                pretrained, dict(arch=VIT_ARCH, img_size=64),
                                VIT_ARCH['embed_dims'], 64)
    return _backbone(pretrained), _backbone(finetuned), path


def _transfer_common(cfg, work_dir, checkpoint):
    _quiet(cfg, work_dir)
    cfg.log_level = 'INFO'  # the backbone's load report
    cfg.custom_imports.imports.append(SNAPSHOT_HOOK)
    cfg.custom_hooks = [dict(type='BackboneSnapshotHook')]
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


def _train_and_test(cfg, tmp_path):
    """Train with tools/train.py (no evaluation), then evaluate the last
    checkpoint with tools/test.py; both on the dumped config."""
    test_cfg = cfg.copy()
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    _, last, result = _train(cfg, tmp_path / 'train')
    assert read_checkpoint(last)['meta']['iter'] == 2
    arrived = read_checkpoint(
        str(tmp_path / 'train' / 'backbone_at_start.pth'))

    test_cfg.custom_hooks = []
    config = tmp_path / 'test_config.py'
    test_cfg.dump(str(config))
    tested = subprocess.run([
        sys.executable,
        str(TEST_PY),
        str(config), last, '--work-dir',
        str(tmp_path / 'test'), '--out',
        str(tmp_path / 'predictions.pkl')
    ],
                            cwd=ROOT,
                            env=dict(
                                os.environ,
                                PYTHONPATH=str(ROOT),
                                OMP_NUM_THREADS='1'),
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert tested.returncode == 0, tested.stderr[-3000:]
    assert (tmp_path / 'predictions.pkl').stat().st_size > 0
    logged = sorted((tmp_path / 'test').glob('*/*.json'))
    assert logged, list((tmp_path / 'test').rglob('*'))
    metrics = json.loads(logged[-1].read_text().splitlines()[-1])
    return arrived, metrics, result


def _assert_fine_tuned(arrived, pretrained, finetuned, keys):
    """The backbone started from the fine-tuned tensors, which differ from
    the pre-trained ones."""
    for key in keys:
        assert torch.equal(arrived[key], finetuned[key]), key
        assert not torch.equal(arrived[key], pretrained[key]), key


def test_swin_chain_into_mask_rcnn(swin_chain, tmp_path, tmp_path_factory):
    pretrained, finetuned, path = swin_chain
    coco = make_coco_instances(
        str(tmp_path_factory.mktemp('coco')),
        num_images=4,
        image_size=(128, 96),
        num_classes=2)
    cfg = detection_config(tmp_path / 'train', coco, path)
    arrived, metrics, _ = _train_and_test(cfg, tmp_path)

    # Every tensor of the fine-tuned backbone arrived as it was saved.
    assert set(finetuned) <= set(arrived)
    for key, value in finetuned.items():
        assert torch.equal(arrived[key], value), key
    # ... and fine-tuning had changed them: weights and norms alike.
    _assert_fine_tuned(arrived, pretrained, finetuned, [
        'patch_embed.projection.weight',
        'stages.0.blocks.0.attn.w_msa.qkv.weight',
        'stages.2.blocks.0.ffn.layers.0.0.weight',
        'stages.2.downsample.reduction.weight',
        'stages.3.blocks.0.norm2.weight',
        'norm3.weight',
    ])
    # Window 4 -> 7 happened at fine-tuning (7^2 -> 13^2 offsets).
    key = 'stages.1.blocks.0.attn.w_msa.relative_position_bias_table'
    assert pretrained[key].shape == (7 * 7, 2)
    assert arrived[key].shape == (13 * 13, 2)
    # The three extra output norms of detection are the only new tensors.
    assert {k.split('.')[0] for k in set(arrived) - set(finetuned)} == \
        {'norm0', 'norm1', 'norm2'}

    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP',
                'coco/segm_mAP_50'):
        assert key in metrics and math.isfinite(metrics[key]), key
        assert 0 <= metrics[key] <= 1 or metrics[key] == -1


def test_vit_chain_into_upernet(vit_chain, tmp_path, tmp_path_factory):
    pretrained, finetuned, path = vit_chain
    ade = make_ade20k(
        str(tmp_path_factory.mktemp('ade')),
        num_images=4,
        image_size=(128, 128))
    cfg = segmentation_config(tmp_path / 'train', ade, path)
    arrived, metrics, result = _train_and_test(cfg, tmp_path)

    # Every tensor of the fine-tuned ViT's encoder arrived: as saved, the
    # position embedding resized from 4 x 4 to 8 x 8 patches.
    encoder = {k: v for k, v in finetuned.items() if not k.startswith('ln2')}
    for key, value in encoder.items():
        if key == 'pos_embed':
            value = resize_pos_embed(value, (4, 4), (8, 8), 'bicubic', 1)
        torch.testing.assert_close(arrived[key], value, rtol=0, atol=0)
    _assert_fine_tuned(arrived, pretrained, finetuned, [
        'patch_embed.projection.weight',
        'cls_token',
        'layers.0.attn.qkv.weight',
        'layers.3.attn.qkv.bias',
        'layers.2.ffn.layers.0.0.weight',
        'layers.1.ln2.weight',
    ])
    # Only BEiT's additions are new, and start as the reference starts them.
    new = set(arrived) - set(encoder)
    assert {k.split('.', 2)[2]
            for k in new} == {
                'attn.relative_position_bias_table',
                'attn.relative_position_index', 'gamma_1', 'gamma_2'
            }
    for i in range(VIT_ARCH['num_layers']):
        table = arrived[f'layers.{i}.attn.relative_position_bias_table']
        assert table.shape == ((2 * 8 - 1)**2 + 3, 2)
        assert not table.any()
        assert (arrived[f'layers.{i}.gamma_1'] == 1).all()
        assert (arrived[f'layers.{i}.gamma_2'] == 1).all()
    # The one line the load printed.
    report = [
        line for line in result.stdout.splitlines()
        if 'FastMIMBEiTViT: new, not in the checkpoint:' in line
    ]
    assert len(report) == 1, result.stdout[-3000:]
    assert 'attn.relative_position_bias_table 228x2 = 0 in 4 blocks' in \
        report[0]
    assert 'gamma_1 64 = 1 in 4 blocks' in report[0]

    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert key in metrics and math.isfinite(metrics[key]), key
        assert 0 <= metrics[key] <= 100


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
