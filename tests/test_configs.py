"""Every config loads, builds its model and carries the paper's recipe."""
import re

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

from .conftest import CONFIG_DIR

CONFIGS = sorted(p for p in (CONFIG_DIR / 'fastmim').glob('*.py'))


def test_there_are_configs():
    names = {p.name for p in CONFIGS}
    assert {
        'fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px.py',
        'fastmim_vit-base-p16_8xb512-amp-coslr-400e_in1k-128px.py',
        'fastmim_swin-base-w4_8xb256-amp-coslr-400e_in1k-128px.py',
    } <= names
    assert len(names) >= 10


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_config_builds_with_paper_recipe(path):
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.custom_imports.imports == ['fastmim_mm']
    model = MODELS.build(cfg.model)
    model.init_weights()

    name = path.stem
    gpus, batch = map(int, re.search(r'_(\d+)xb(\d+)-', name).groups())
    epochs = int(re.search(r'-(\d+)e_', name).group(1))
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.train_cfg.max_epochs == epochs

    # Pre-training recipe shared by every FastMIM config.
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'AdamW' and opt.betas == (0.9, 0.95)
    assert opt.weight_decay == 0.05
    assert model.mask_generator.mask_ratio == 0.75
    crop = cfg.train_dataloader.dataset.dataset.pipeline[0]
    if 'gpu-decode' in name:
        assert crop.type == 'DeviceDecodeRandomResizedCrop'
        assert model.data_preprocessor.__class__.__name__ == \
            'DeviceDecodeDataPreprocessor'
    else:
        assert crop.type == 'DecodeRandomResizedCrop'
    assert crop.crop_ratio_range == (0.2, 1.0)
    assert crop.interpolation == 'bicubic'
    assert model.input_size == (crop.scale, crop.scale)
    if 'rgb' not in name:
        hog = model.target_generator
        assert (hog.nbins, hog.pool, hog.gaussian_window) == (9, 8, 0)

    schedulers = cfg.param_scheduler
    warmup, cosine = schedulers
    assert warmup.type == 'LinearLR' and cosine.type == 'CosineAnnealingLR'
    assert cosine.end == epochs and cosine.eta_min == 0 or 'demo' in name

    # Panels in every pre-training run, changeable from the command line.
    panels = cfg.default_hooks.reconstruction
    assert panels.type == 'FastMIMReconstructionHook'
    assert 1 <= panels.interval <= epochs // 2

    hooks = {h.type: h for h in cfg.get('custom_hooks', [])}
    if 'ProgressiveResolutionHook' in hooks:
        # lr per 256 images; the hook scales it by the effective batch.
        assert opt.lr == pytest.approx(1.5e-4)
        for _, size, _, _ in hooks['ProgressiveResolutionHook'].phases:
            model.check_input_size((size, size))
    elif 'demo' not in name:
        assert opt.lr == pytest.approx(1.5e-4 * gpus * batch / 256)
        assert cfg.auto_scale_lr.base_batch_size == gpus * batch

    if 'demo' in name:
        return
    if 'vit-base' in name:
        assert model.backbone.embed_dims == 768
        assert len(model.backbone.layers) == (8 if 'trunc8' in name else 12)
        assert warmup.end == 20
        assert len(model.neck.blocks) == 1
        assert model.mask_generator.mask_patch_size == 16
    if 'swin' in name:
        assert warmup.end == 10
        assert len(model.neck.blocks) == 4
        assert model.mask_generator.mask_patch_size == 32
        assert model.backbone.stages[0].blocks[0].attn.window_size == 4
    assert model.neck.pred.out_features == (768 if 'rgb' in name else 27 *
                                            (model.mask_patch_size // 8)**2)


@pytest.mark.parametrize(
    'path',
    sorted((CONFIG_DIR / '_base_').rglob('*.py')),
    ids=lambda p: p.stem)
def test_base_config_loads(path):
    cfg = Config.fromfile(str(path))
    if 'model' in cfg:
        MODELS.build(cfg.model)
