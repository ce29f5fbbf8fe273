"""The precision the pre-training and fine-tuning configs train in:
bfloat16 where the GPU has it, else float16 with dynamic loss scaling,
fp32 without a GPU; the non-finite loss stop on in every case."""
import pytest
import torch
from mmengine.config import Config

from ..conftest import CONFIG_DIR

CONFIGS = [
    CONFIG_DIR / 'fastmim' /
    'fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px.py',
    CONFIG_DIR / 'fastmim' /
    'fastmim-p_swin-large-w4_8xb256-amp-coslr-400e_in1k-128to256px.py',
    CONFIG_DIR / 'fastmim' / 'benchmarks' /
    'vit-base-p16_8xb128-coslr-100e_in1k.py',
]


def _merged(train_module, config, monkeypatch, bf16, *options):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda: bf16)
    cfg = Config.fromfile(str(config))
    for option in options:
        key, value = option.split('=')
        cfg.merge_from_dict({key: value})
    return train_module.merge_args(cfg, train_module.parse_args([str(config)]))


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: p.stem[:24])
def test_bf16_where_the_gpu_has_it_else_fp16(train_module, config,
                                             monkeypatch):
    cfg = Config.fromfile(str(config))
    # The choice is the config's, explicit: left to the device.
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype is None
    assert cfg.default_hooks.check_loss.type == 'NonFiniteLossHook'

    cfg = _merged(train_module, config, monkeypatch, True)
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    cfg = _merged(train_module, config, monkeypatch, False)
    assert cfg.optim_wrapper.dtype == 'float16'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    # A dtype given is kept.
    cfg = _merged(train_module, config, monkeypatch, True,
                  'optim_wrapper.dtype=float16')
    assert cfg.optim_wrapper.dtype == 'float16'
