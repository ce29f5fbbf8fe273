import pytest
import torch
from mmengine.config import Config

from ..conftest import CONFIG_DIR, DEMO_CONFIG, run_train_py

VIT_B = CONFIG_DIR / 'fastmim' / \
    'fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px.py'


@pytest.fixture
def train(train_module):
    return train_module


def test_config_error_is_one_clear_line(tmp_path):
    result = run_train_py(DEMO_CONFIG, '--work-dir', tmp_path,
                          '--cfg-options',
                          'model.mask_generator.mask_patch_size=32')
    assert result.returncode == 1
    assert 'train.py: error:' in result.stderr
    assert 'mask_patch_size=32' in result.stderr
    assert 'Traceback' not in result.stderr


def test_missing_files_are_named(train, capsys):
    with pytest.raises(SystemExit):
        train.main(['no/such/config.py'])
    assert 'no/such/config.py does not exist' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main([str(DEMO_CONFIG), '--resume', 'missing.pth'])
    assert '--resume missing.pth: no such checkpoint' in \
        capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU behaviour')
def test_amp_config_runs_in_fp32_on_cpu(train, capsys):
    args = train.parse_args([str(VIT_B), '--resume'])
    cfg = train.merge_args(Config.fromfile(str(VIT_B)), args)
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert 'loss_scale' not in cfg.optim_wrapper
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.work_dir.endswith(VIT_B.stem)
    with pytest.raises(SystemExit):
        train.merge_args(
            Config.fromfile(str(VIT_B)),
            train.parse_args([str(VIT_B), '--amp']))
    assert '--amp needs a CUDA device' in capsys.readouterr().err


def test_auto_scale_lr_and_compile_flags(train):
    args = train.parse_args([str(VIT_B), '--auto-scale-lr', '--compile'])
    cfg = train.merge_args(Config.fromfile(str(VIT_B)), args)
    assert cfg.auto_scale_lr == dict(base_batch_size=4096, enable=True)
    assert cfg.compile is True
    assert 'compile' not in train.merge_args(
        Config.fromfile(str(VIT_B)), train.parse_args([str(VIT_B)]))
