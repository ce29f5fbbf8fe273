import re

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

from fastmim_mm.engine import read_checkpoint
from ..conftest import (CONFIG_DIR, DEMO_CONFIG, TINY_VIT, run_train_py,
                        runner_config)

VIT_B = CONFIG_DIR / 'fastmim' / \
    'fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px.py'


@pytest.fixture
def train(train_module):
    return train_module


def test_config_error_is_one_clear_line(tmp_path, image_folder):
    result = run_train_py(
        DEMO_CONFIG, '--work-dir', tmp_path, '--cfg-options',
        f'train_dataloader.dataset.dataset.data_root={image_folder}',
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
    args = train.parse_args([str(VIT_B)])
    cfg = train.merge_args(Config.fromfile(str(VIT_B)), args)
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert 'loss_scale' not in cfg.optim_wrapper
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


def test_auto_resume_needs_a_checkpoint(train, tmp_path, capsys):
    result = run_train_py(DEMO_CONFIG, '--work-dir', tmp_path / 'new',
                          '--resume')
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'train.py: error: --resume: no checkpoint to resume in the work '
        f'dir {tmp_path / "new"} (no last_checkpoint file there). Check '
        f'--work-dir, give --resume CHECKPOINT, or leave out --resume to '
        f'start a new run.')

    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'gone.pth'))
    with pytest.raises(SystemExit):
        train.merge_args(
            Config.fromfile(str(DEMO_CONFIG)),
            train.parse_args(
                [str(DEMO_CONFIG), '--work-dir',
                 str(tmp_path), '--resume']))
    assert f'names {tmp_path / "gone.pth"}, which does not exist' in \
        capsys.readouterr().err
    (tmp_path / 'gone.pth').write_bytes(b'')
    args = train.parse_args(
        [str(DEMO_CONFIG), '--work-dir',
         str(tmp_path), '--resume'])
    cfg = train.merge_args(Config.fromfile(str(DEMO_CONFIG)), args)
    assert cfg.resume is True and cfg.load_from is None


def _tiny_config(tmp_path, image_folder, **overrides):
    """The demo config shrunk (tiny ViT, 16 images of 64 px), as a file."""
    cfg = runner_config(tmp_path / 'work', image_folder, **overrides)
    cfg.custom_hooks = []
    path = tmp_path / 'config.py'
    cfg.dump(str(path))
    return path


def test_console_shows_a_summary_and_the_log_file_keeps_the_rest(
        tmp_path, image_folder):
    # Panels every epoch from the command line; pin_memory on a CPU warns
    # when each epoch's data loader iterator starts.
    config = _tiny_config(
        tmp_path, image_folder, max_epochs=2, log_level='INFO')
    cfg = Config.fromfile(str(config))
    cfg.default_hooks.reconstruction = dict(
        type='FastMIMReconstructionHook', interval=7)
    cfg.train_dataloader.pin_memory = True
    cfg.dump(str(config))
    result = run_train_py(config, '--cfg-options',
                          'default_hooks.reconstruction.interval=1')
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    summary = [line for line in console.splitlines() if 'Built ' in line]
    assert len(summary) == 1
    log_file = next((tmp_path / 'work').glob('*/*.log'))
    model = MODELS.build(TINY_VIT)
    total = sum(p.numel() for p in model.parameters()) / 1e6
    trainable = sum(p.numel()
                    for p in model.parameters() if p.requires_grad) / 1e6
    assert summary[0].endswith(
        f'Built FastMIM (FastMIMViT backbone); {total:.2f} M parameters '
        f'({trainable:.2f} M trainable); input 64 px; train data: 16 samples '
        f'(CustomDataset in {image_folder}), batch 4 x 1 process, 4 '
        f'iterations per epoch; weights: random initialisation; config and '
        f'environment in {log_file}')
    for file_only in ('Config:', 'paramwise_options', 'System environment',
                      'Hooks will be executed'):
        assert file_only not in console
        assert file_only in log_file.read_text()
    # Warned when each epoch's loader starts: shown once, in one line, and
    # kept in the log file.
    warning = ("UserWarning: 'pin_memory' argument is set as true but no "
               "accelerator is found, then device pinned memory won't be "
               "used.")
    shown = [line for line in console.splitlines() if 'pin_memory' in line]
    assert len(shown) == 1, console
    assert re.search(
        re.escape(warning) + r' \(torch/utils/data/dataloader\.py:\d+\)$',
        shown[0]), shown
    assert warning in log_file.read_text()
    panels = sorted(
        p.name for p in (tmp_path / 'work' / 'reconstructions').iterdir())
    assert panels == [
        'reconstruction_epoch_1.png', 'reconstruction_epoch_2.png'
    ]


def test_compile_trains(tmp_path, image_folder):
    """--compile compiles the forward pass; MMEngine's own compile of the
    whole train step failed in the optimiser step on the first iteration
    (TorchDynamo: 'UserDefinedDictVariable' object has no attribute
    'items')."""
    config = _tiny_config(
        tmp_path, image_folder, batch_size=8, log_level='INFO')
    result = run_train_py(config, '--compile', OMP_NUM_THREADS='1')
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Compiled the model's forward pass" in result.stdout
    losses = [float(x) for x in re.findall(r'loss: ([\d.]+)', result.stdout)]
    assert len(losses) == 2 and all(0 < x < 1 for x in losses)
    ckpt = read_checkpoint(tmp_path / 'work' / 'epoch_1.pth')
    assert ckpt['meta']['iter'] == 2


def test_misspelt_cfg_option_is_refused(tmp_path):
    result = run_train_py(DEMO_CONFIG, '--work-dir', tmp_path, '--cfg-options',
                          'train_dataloadr.batch_size=4')
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "train.py: error: --cfg-options train_dataloadr.batch_size: the "
        "config has no top-level key 'train_dataloadr'. Did you mean "
        "'train_dataloader'? To add it as a new key on purpose, write "
        "+train_dataloadr.batch_size=...")
    assert not (tmp_path / 'last_checkpoint').exists()


@pytest.mark.parametrize('key,message', [
    ('model.backbone.drop_path_rat',
     "has no key 'drop_path_rat' in model.backbone, and FastMIMViT takes no "
     "argument 'drop_path_rat'. Did you mean 'drop_path_rate'?"),
    ('train_dataloader.batch_sise',
     "has no key 'batch_sise' in train_dataloader, and the data loader "
     "takes no argument 'batch_sise'. Did you mean 'batch_size'?"),
    ('optim_wrapper.optimizer.betass',
     "and AdamW takes no argument 'betass'. Did you mean 'betas'?"),
    ('train_cfg.max_epoch',
     "and EpochBasedTrainLoop takes no argument 'max_epoch'. Did you mean "
     "'max_epochs'?"),
    ('default_hooks.reconstruction.intervall',
     "and FastMIMReconstructionHook takes no argument 'intervall'. Did you "
     "mean 'interval'?"),
    ('train_dataloader.dataset.dataset.pipeline.7.scale',
     'has 3 items in the list train_dataloader.dataset.dataset.pipeline, '
     "so '7' names none of them."),
])
def test_cfg_options_below_a_known_type_are_checked(key, message):
    from fastmim_mm.engine.arguments import merge_cfg_options
    cfg = Config.fromfile(str(DEMO_CONFIG))
    with pytest.raises(ValueError) as error:
        merge_cfg_options(cfg, {key: 1})
    assert message in str(error.value)
    assert str(error.value).endswith(f'write +{key}=...')


def test_cfg_options_that_something_reads_pass():
    from fastmim_mm.engine.arguments import merge_cfg_options
    cfg = Config.fromfile(str(DEMO_CONFIG))
    merge_cfg_options(
        cfg,
        {
            'model.backbone.drop_path_rate': 0.1,  # an argument, not set
            'train_dataloader.prefetch_factor': 4,  # torch's DataLoader
            'train_dataloader.dataset.dataset.pipeline.0.skip_broken': True,
            'compile': True,  # read by the Runner
            'default_hooks.reconstruction.interval': 1,
            '+my_note.text': 'new on purpose',
        })
    assert cfg.model.backbone.drop_path_rate == 0.1
    assert cfg.train_dataloader.prefetch_factor == 4
    assert cfg.train_dataloader.dataset.dataset.pipeline[0].skip_broken is True
    assert cfg.compile is True
    assert cfg.default_hooks.reconstruction.interval == 1
    assert cfg.my_note.text == 'new on purpose' and '+my_note' not in cfg


MASK_RCNN = CONFIG_DIR / 'fastmim' / 'benchmarks' / 'mmdetection' / \
    'mask-rcnn_fastmim-swin-base-w7_fpn_rpn-2conv_4conv1fc_syncbn-all_' \
    '8xb4-lsj-scp-3x_coco.py'


@pytest.mark.parametrize('key,value,where', [
    ('checkpoint', 'x.pth', 'Set model.backbone.init_cfg.checkpoint=x.pth '
     'instead (the key holding its value).'),
    ('data_root', 'data/x/', 'The keys holding its value: '
     'train_dataloader.dataset.dataset.data_root, val_dataloader.dataset.'
     'data_root, test_dataloader.dataset.data_root; set those that came '
     'from it instead.'),
    ('image_size', (512, 512), 'The keys holding its value: '
     'model.data_preprocessor.batch_augments.0.size, train_dataloader.'
     'dataset.dataset.pipeline.2.scale, train_dataloader.dataset.dataset.'
     'pipeline.3.crop_size, train_dataloader.dataset.dataset.pipeline.6.'
     'size; set those that came from it instead.'),
    ('head_norm_cfg.type', 'BN', 'No key holds its value as it is; set '
     "those it was used in (a run's log file starts with the whole "
     'config).'),
])
def test_config_variables_are_refused_with_the_keys_that_work(
        key, value, where):
    """A variable of the config file was copied where it is used when the
    config was read; setting it would change nothing."""
    from fastmim_mm.engine.arguments import merge_cfg_options
    cfg = Config.fromfile(str(MASK_RCNN))
    with pytest.raises(ValueError) as error:
        merge_cfg_options(cfg, {key: value})
    name = key.split('.')[0]
    assert str(error.value) == (
        f'--cfg-options {key}: {name!r} is a variable of the config file, '
        f'copied where it is used when the config was read, so setting it '
        f'now changes nothing. {where}')
    merge_cfg_options(cfg, {f'+{key}': value})  # on purpose: allowed
