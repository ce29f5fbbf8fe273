"""FSDP (FastMIMFlexibleRunner with FastMIMFSDPStrategy, a unit per
block) on two CPU processes: the losses equal DDP's, full checkpoints
resume (onto another process count too), sharded ones resume on their
process count and are refused on another, the full checkpoint fine-tunes,
and the toolkit's hooks run under it."""
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

from fastmim_mm.engine import CheckedLoading, read_checkpoint
from fastmim_mm.engine.fsdp_strategy import fastmim_block_wrap_policy
from ..conftest import (CONFIG_DIR, ROOT, TINY_SWIN, TINY_VIT, free_port,
                        runner_config)
from .run_logs import scalar_runs
from .test_distributed import _dist_train, _env

# As the configs: every ViT or Swin block is an FSDP unit of its own.
FSDP = dict(
    type='FastMIMFSDPStrategy',
    model_wrapper=dict(
        type='MMFullyShardedDataParallel',
        use_orig_params=True,
        auto_wrap_policy='fastmim_block_wrap_policy'))
# Sharding changes the order of the floating-point sums, nothing else.
DDP_TOLERANCE = 1e-5


def _config(folder, image_folder, name, fsdp=None, **overrides):
    """The tiny ViT (or ``model``) on 16 images, batch 2 per process: 4
    iterations, a checkpoint after the second (iter_2.pth) and at the end
    (epoch_1.pth)."""
    overrides.setdefault('custom_hooks', [])
    cfg = runner_config(
        folder / name,
        image_folder,
        batch_size=2,
        log_processor=dict(window_size=1),
        **overrides)
    cfg.default_hooks.checkpoint.iter_interval = 2
    if fsdp is not None:
        cfg.runner_type = 'FastMIMFlexibleRunner'
        cfg.strategy = dict(FSDP, **fsdp)
    path = str(folder / f'{name}.py')
    cfg.dump(path)
    return path


def _in_sequence(*configs):
    """Train the configs one after another in the same two processes."""
    command = [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
        '--master_port',
        str(free_port()),
        str(ROOT / 'tests' / 'test_engine' / 'train_in_sequence.py'), *configs
    ]
    return subprocess.run(
        command,
        cwd=ROOT,
        env=_env(PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=300)


@pytest.fixture(scope='module')
def runs(image_folder, tmp_path_factory):
    """Work dirs of the runs, trained once for the module's tests."""
    folder = tmp_path_factory.mktemp('fsdp')
    work = {
        name: folder / name
        for name in ('fsdp', 'one', 'ddp', 'resumed', 'ddp_swin', 'fsdp_swin',
                     'local', 'local_resumed')
    }
    # Through tools/dist_train.sh, with the reconstruction panels.
    fsdp = _config(
        folder,
        image_folder,
        'fsdp',
        fsdp={},
        default_hooks=dict(
            reconstruction=dict(type='FastMIMReconstructionHook')))
    result = _dist_train(fsdp)
    assert result.returncode == 0, result.stderr[-3000:]
    # The full checkpoint of two processes, resumed by one.
    result = _dist_train(
        fsdp,
        '--resume',
        str(work['fsdp'] / 'iter_2.pth'),
        '--work-dir',
        str(work['one']),
        processes=1)
    assert result.returncode == 0, result.stderr[-3000:]
    one_console = result.stdout + result.stderr

    progressive = [
        dict(type='ProgressiveResolutionHook', phases=[(0, 64, 2, 2)])
    ]
    swin = dict(model=TINY_SWIN, custom_hooks=progressive)
    configs = [
        _config(folder, image_folder, 'ddp'),
        _config(
            folder,
            image_folder,
            'resumed',
            fsdp={},
            resume=True,
            load_from=str(work['fsdp'] / 'iter_2.pth')),
        _config(folder, image_folder, 'ddp_swin', **swin),
        _config(
            folder,
            image_folder,
            'fsdp_swin',
            fsdp=dict(activation_checkpointing=True),
            **swin),
        _config(
            folder, image_folder, 'local', fsdp=dict(state_dict_cfg='local')),
        # Trained after 'local', which saves the shards it resumes from.
        _config(
            folder,
            image_folder,
            'local_resumed',
            fsdp=dict(state_dict_cfg='local'),
            resume=True,
            load_from=str(work['local'] / 'iter_2.pth')),
    ]
    result = _in_sequence(*configs)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(work=work, one_console=one_console, image_folder=image_folder)


def _losses(work_dir):
    return scalar_runs(work_dir)[0]


@pytest.mark.parametrize('model, units', [
    (TINY_VIT, ['backbone.layers.0', 'backbone.layers.1', 'neck.blocks.0']),
    (TINY_SWIN, [f'backbone.stages.{i}.blocks.0'
                 for i in range(4)] + ['neck.blocks.0']),
])
def test_every_block_is_an_fsdp_unit(model, units):
    """The configs' auto_wrap_policy wraps the blocks, whatever their size,
    and recurses everywhere to find them."""
    model = MODELS.build(model)
    assert [
        name for name, module in model.named_modules()
        if fastmim_block_wrap_policy(module, False, 0)
    ] == units
    assert all(
        fastmim_block_wrap_policy(module, True, 0)
        for module in model.modules())


def test_fsdp_losses_equal_ddp_losses(runs):
    work = runs['work']
    for fsdp, ddp in (('fsdp', 'ddp'), ('fsdp_swin', 'ddp_swin')):
        sharded, replicated = _losses(work[fsdp]), _losses(work[ddp])
        # ViT: 4 iterations; Swin: 4 iterations, an optimiser step every
        # 2 (ProgressiveResolutionHook's accumulation, FSDP's no_sync).
        assert sorted(sharded) == sorted(replicated) == [1, 2, 3, 4]
        assert len(set(sharded.values())) == 4  # the weights change
        for it, loss in replicated.items():
            assert sharded[it] == pytest.approx(
                loss, abs=DDP_TOLERANCE, rel=0), (fsdp, it)


def test_full_checkpoint_resumes_on_two_and_one_processes(runs):
    work = runs['work']
    full = _losses(work['fsdp'])
    meta = read_checkpoint(work['fsdp'] / 'iter_2.pth')['meta']
    assert (meta['epoch'], meta['iter']) == (0, 2)
    assert meta['epoch_progress'] == dict(samples=4, world_size=2)
    assert len(meta['random_state']) == 2

    # Two processes: the run continues at iteration 3, as it was.
    resumed = _losses(work['resumed'])
    assert sorted(resumed) == [3, 4]
    for it, loss in resumed.items():
        assert loss == pytest.approx(full[it], abs=1e-6, rel=0), it

    # One process: iteration 3 on, over the 8 samples of the epoch left
    # (batch 2: 4 iterations), with freshly seeded streams.
    assert sorted(_losses(work['one'])) == [3, 4, 5, 6]
    assert 'random streams not restored: the checkpoint holds those of 2 ' \
        'process(es), this run has 1' in runs['one_console']


def test_sharded_checkpoint_resumes_on_its_process_count(runs):
    work = runs['work']
    uninterrupted = _losses(work['local'])
    assert sorted(uninterrupted) == [1, 2, 3, 4]
    # The shards of iteration 2: the run continues at iteration 3, with
    # the weights, AdamW's states and the random streams of each process.
    resumed = _losses(work['local_resumed'])
    assert sorted(resumed) == [3, 4]
    for it, loss in resumed.items():
        assert loss == pytest.approx(uninterrupted[it], abs=1e-6, rel=0), it
    assert sorted(os.listdir(work['local_resumed'] /
                             'epoch_1.pth')) == ['rank0.pth', 'rank1.pth']


def test_sharded_checkpoint_refused_on_another_process_count(runs):
    work = runs['work']
    shards = work['local'] / 'iter_2.pth'
    assert sorted(os.listdir(shards)) == ['rank0.pth', 'rank1.pth']
    assert (work['local'] / 'last_checkpoint').read_text() == str(
        work['local'] / 'epoch_1.pth')

    # One process cannot take the shards of two: one line, no trace.
    result = _dist_train(
        str(work['local'].parent / 'local.py'),
        '--resume',
        str(shards),
        '--work-dir',
        str(work['local'].parent / 'local_one'),
        processes=1)
    assert result.returncode == 1
    errors = [
        line for line in result.stderr.splitlines()
        if line.startswith('train.py: error: ')
    ]
    assert errors == [
        f'train.py: error: {shards} holds the shards of 2 processes; this '
        f'run (strategy.state_dict_cfg=local) loads the shards of its 1 '
        f'processes. Resume with 2 processes, or load full checkpoints '
        f'(strategy.state_dict_cfg=full, which any number of processes '
        f'loads).'
    ], result.stderr[-3000:]
    assert 'Traceback' not in result.stderr


def test_full_checkpoint_fine_tunes_with_identical_weights(runs):
    checkpoint = runs['work']['fsdp'] / 'epoch_1.pth'
    state = read_checkpoint(checkpoint)['state_dict']
    cfg = Config.fromfile(
        str(CONFIG_DIR / 'fastmim' / 'benchmarks' /
            'vit-base-p16_8xb128-coslr-100e_in1k.py'))
    cfg.model.backbone.update(
        arch=dict(
            embed_dims=64, num_layers=2, num_heads=2,
            feedforward_channels=128),
        img_size=64,
        drop_path_rate=0.)
    cfg.model.backbone.init_cfg.checkpoint = str(checkpoint)
    cfg.model.head.in_channels = 64
    backbone = MODELS.build(cfg.model).backbone
    with CheckedLoading():  # as the fine-tuning run loads it
        backbone.init_weights()
    loaded = backbone.state_dict()
    compared = [k for k in loaded if f'backbone.{k}' in state]
    assert len(compared) >= 2 * 12  # both blocks and the patch embedding
    for key in compared:
        assert torch.equal(loaded[key], state[f'backbone.{key}']), key


def test_reconstruction_panel_under_fsdp(runs):
    panels = os.listdir(runs['work']['fsdp'] / 'reconstructions')
    assert panels == ['reconstruction_epoch_1.png']
