import copy
import importlib.util
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmpretrain.registry import HOOKS
from synthetic_imagenet import make_imagenet_folder
from torch import nn

import fastmim_mm  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / 'configs'
DEMO_CONFIG = CONFIG_DIR / 'fastmim' / \
    'fastmim_vit-tiny-p16_1xb16-coslr-14e_demo-128px.py'
TRAIN_PY = ROOT / 'tools' / 'train.py'

init_default_scope('mmpretrain')

# Small versions of the three backbone families, for fast CPU tests.
TINY_VIT = dict(
    type='FastMIM',
    input_size=64,
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='FastMIMViT',
        arch=dict(
            embed_dims=64, num_layers=2, num_heads=2,
            feedforward_channels=128),
        img_size=64,
        patch_size=16),
    neck=dict(
        type='FastMIMNeck',
        in_channels=64,
        out_channels=108,
        embed_dims=32,
        num_layers=1,
        num_heads=2,
        num_prefix_tokens=1),
    mask_generator=dict(type='FastMIMMaskGenerator', mask_patch_size=16))

TINY_SWIN = dict(
    TINY_VIT,
    backbone=dict(
        type='SwinTransformer',
        arch=dict(embed_dims=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8]),
        img_size=64,
        stage_cfgs=dict(block_cfgs=dict(window_size=2)),
        out_indices=(3, )),
    neck=dict(
        type='FastMIMNeck',
        in_channels=256,
        out_channels=432,
        embed_dims=32,
        num_layers=1,
        num_heads=2),
    mask_generator=dict(type='FastMIMMaskGenerator', mask_patch_size=32))

TINY_RESNET = dict(
    TINY_SWIN,
    backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
    neck=dict(
        type='FastMIMNeck',
        in_channels=512,
        out_channels=432,
        embed_dims=32,
        num_layers=1,
        num_heads=2))


class FixedMask(nn.Module):
    """Stands in for a mask generator and returns a given mask."""

    def __init__(self, mask, mask_patch_size):
        super().__init__()
        self.mask = mask
        self.mask_patch_size = mask_patch_size

    def forward(self, batch_size, height, width, device=None):
        return self.mask.to(device)


@HOOKS.register_module(force=True)
class RecordHook(Hook):
    """Keeps what tests need to see of a run, in memory."""
    records: list = []

    def before_train(self, runner):
        RecordHook.records.append(dict(event='before_train', **_state(runner)))

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        RecordHook.records.append(
            dict(
                event='iter',
                loss=outputs["loss"].item(),
                input_shape=tuple(data_batch['inputs'].shape),
                **_state(runner)))


def _state(runner):
    ow = runner.optim_wrapper
    return dict(
        iter=runner.iter,
        epoch=runner.epoch,
        lr=ow.param_groups[0]['lr'],
        accumulative_counts=ow._accumulative_counts)


def free_port() -> int:
    """A TCP port nobody listens on now, for a torchrun rendezvous."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_train_py(*args, **env) -> subprocess.CompletedProcess:
    """``tools/train.py ARGS`` in a process of its own, with the repository
    importable (for test hooks in ``custom_imports``) and ``env`` added to
    the environment."""
    return subprocess.run(
        [sys.executable, str(TRAIN_PY), *map(str, args)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), **env),
        capture_output=True,
        text=True,
        timeout=300)


def load_tool(relative_path: str):
    """A script under tools/ as a module (tools/ is not a package)."""
    path = ROOT / 'tools' / relative_path
    spec = importlib.util.spec_from_file_location('fastmim_tool_' + path.stem,
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def train_module():
    return load_tool('train.py')


@pytest.fixture(scope='session')
def image_folder(tmp_path_factory):
    """16 synthetic 80x80 JPEGs in ImageNet layout (2 classes)."""
    root = tmp_path_factory.mktemp('imagenet')
    return str(
        make_imagenet_folder(
            str(root), num_classes=2, images_per_class=8, image_size=(80, 80)))


def runner_config(work_dir,
                  data_root,
                  model=TINY_VIT,
                  input_size=64,
                  batch_size=4,
                  max_epochs=1,
                  **overrides) -> Config:
    """The demo config shrunk to a tiny model and dataset."""
    cfg = Config.fromfile(str(DEMO_CONFIG))
    cfg.model = copy.deepcopy(model)
    cfg.work_dir = str(work_dir)
    # Runners made in one process would share loggers and the visualizer
    # (MMEngine keeps one instance per name), so a later run's scalars would
    # land in an earlier run's folder.
    cfg.experiment_name = cfg.visualizer.name = f'test_{uuid.uuid4().hex[:8]}'
    cfg.log_level = 'WARNING'
    cfg.train_dataloader.batch_size = batch_size
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_dataloader.dataset.dataset.data_root = data_root
    cfg.train_dataloader.dataset.dataset.pipeline[0].scale = input_size
    cfg.train_cfg.max_epochs = max_epochs
    cfg.param_scheduler = None
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.pop('reconstruction')  # panels: their own tests
    cfg.custom_hooks = [dict(type='RecordHook')]
    cfg.merge_from_dict(overrides)
    return cfg


@pytest.fixture
def records():
    RecordHook.records.clear()
    yield RecordHook.records
    RecordHook.records.clear()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
