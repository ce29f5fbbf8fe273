"""tools/dist_train.sh on CPU: torchrun, gloo, two processes."""
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

from fastmim_mm.engine import read_checkpoint
from ..conftest import ROOT, free_port, run_train_py, runner_config


def _config(tmp_path, image_folder, name, batch_size):
    cfg = runner_config(
        tmp_path / name,
        image_folder,
        batch_size=batch_size,
        max_epochs=2,
        input_size=64,
        randomness=dict(seed=0, diff_rank_seed=False),
        custom_hooks=[])
    # A process draws the masks of its own samples, so per-rank masks can
    # never equal one process's draw for the whole batch. Masking every
    # block makes the masks identical in both set-ups, and a fixed resize
    # does the same for the crop, while sharding, DDP's gradient averaging
    # and the optimiser still decide the losses.
    cfg.model.mask_generator.mask_ratio = 0.95  # keeps int(16 * .05) = 0
    cfg.train_dataloader.dataset.dataset.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(64, 64)),
        dict(type='PackInputs'),
    ]
    path = str(tmp_path / f'{name}.py')
    cfg.dump(path)
    return path


def _dist_train(config, *args):
    """tools/dist_train.sh CONFIG 2 in CPU processes."""
    env = dict(
        os.environ,
        PORT=str(free_port()),
        OMP_NUM_THREADS='1',
        PATH=f'{os.path.dirname(sys.executable)}:{os.environ["PATH"]}')
    return subprocess.run(
        ['bash',
         str(ROOT / 'tools' / 'dist_train.sh'), config, '2', *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300)


def test_two_cpu_processes_match_one(image_folder, tmp_path):
    two = _config(tmp_path, image_folder, 'two', batch_size=4)
    result = _dist_train(two)
    assert result.returncode == 0, result.stderr[-3000:]
    ckpts = sorted(
        f for f in os.listdir(tmp_path / 'two') if f.endswith('.pth'))
    assert ckpts == ['epoch_1.pth', 'epoch_2.pth']  # saved once, by rank 0

    one = _config(tmp_path, image_folder, 'one', batch_size=8)
    result = run_train_py(one, OMP_NUM_THREADS='1')
    assert result.returncode == 0, result.stderr[-3000:]

    # Same data, same masks, DDP's averaged gradients: the two runs must
    # end with the same weights and so give the same loss on any batch.
    two_sd = read_checkpoint(tmp_path / 'two' / 'epoch_2.pth')['state_dict']
    one_sd = read_checkpoint(tmp_path / 'one' / 'epoch_2.pth')['state_dict']
    initial = read_checkpoint(tmp_path / 'two' / 'epoch_1.pth')['state_dict']
    assert not torch.equal(two_sd['neck.pred.weight'],
                           initial['neck.pred.weight'])
    for key, value in one_sd.items():
        torch.testing.assert_close(two_sd[key], value, atol=2e-5, rtol=1e-4)

    cfg = Config.fromfile(one)
    model = MODELS.build(cfg.model)
    batch = torch.randn(8, 3, 64, 64)
    losses = []
    for state in (one_sd, two_sd):
        model.load_state_dict(state)
        torch.manual_seed(0)
        losses.append(model.loss(batch, None)['loss'].item())
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)


def _threads():
    return set(os.listdir('/proc/self/task'))


def test_session_end_joins_gloo_threads(tmp_path):
    """The gloo group's worker threads must be gone when the session ends,
    even while a DDP model sits in a reference cycle as it does inside a
    Runner: threads left to interpreter exit abort the process now and
    then."""
    from torch.nn.parallel import DistributedDataParallel

    from fastmim_mm.engine.launch import distributed_session

    before = _threads()
    torch.distributed.init_process_group(
        'gloo',
        init_method=f'file://{tmp_path / "store"}',
        rank=0,
        world_size=1)
    with distributed_session():
        runner = type('Runner', (), {})()
        runner.model = DistributedDataParallel(torch.nn.Linear(4, 4))
        runner.itself = runner  # the cycle that delays freeing the model
        torch.distributed.broadcast(torch.ones(3), src=0)
        gloo = _threads() - before
        assert gloo
        del runner
    assert not torch.distributed.is_initialized()
    assert not gloo & _threads()


def test_nan_in_one_process_stops_all_before_saving(image_folder, tmp_path):
    """A NaN loss in rank 1 only: the averaged gradients carry it into rank
    0's weights, so rank 0 must not save them although its loss is finite,
    and neither process may wait for the other."""
    cfg = runner_config(
        tmp_path,
        image_folder,
        batch_size=4,
        max_epochs=2,
        input_size=64,
        custom_hooks=[dict(type='PoisonHook', at_iter=1, rank=1)])
    cfg.custom_imports.imports.append('tests.test_engine.fault_hooks')
    path = str(tmp_path / 'nan.py')
    cfg.dump(path)
    result = _dist_train(path)  # 16 images, 2 x 4 a step: 2 steps an epoch
    assert result.returncode != 0
    assert 'non-finite loss at iteration 2 (epoch 1) in the process of ' \
        'rank 1 (rank 0 reports its own terms)' in result.stderr
    assert 'no checkpoint has been saved yet' in result.stderr
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.pth')]


def test_two_processes_resume_exactly(image_folder, tmp_path):
    """Each process draws its own masks and crops (diff_rank_seed); a run
    interrupted after epoch 1 and resumed must end with the weights of an
    uninterrupted one, so every process's streams must come back."""

    def config(name, *hooks):
        cfg = runner_config(
            tmp_path / name,
            image_folder,
            batch_size=4,
            max_epochs=3,
            randomness=dict(seed=3, diff_rank_seed=True, deterministic=True),
            custom_hooks=list(hooks))
        cfg.custom_imports.imports.append('tests.test_engine.fault_hooks')
        path = str(tmp_path / f'{name}.py')
        cfg.dump(path)
        return path

    result = _dist_train(config('full'))
    assert result.returncode == 0, result.stderr[-3000:]
    cut = config('cut', dict(type='StopAfterEpochHook', stop_epoch=1))
    result = _dist_train(cut)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / 'cut' / 'epoch_2.pth').exists()
    states = read_checkpoint(tmp_path / 'cut' /
                             'epoch_1.pth')['meta']['random_state']
    assert len(states) == 2
    assert not torch.equal(states[0]['torch'], states[1]['torch'])
    result = _dist_train(config('cut'), '--resume')
    assert result.returncode == 0, result.stderr[-3000:]

    full = read_checkpoint(tmp_path / 'full' / 'epoch_3.pth')['state_dict']
    resumed = read_checkpoint(tmp_path / 'cut' / 'epoch_3.pth')['state_dict']
    for key, value in full.items():
        torch.testing.assert_close(resumed[key], value, atol=1e-6, rtol=0)

    # One process cannot continue the streams of two: it says so, and runs.
    result = run_train_py(cut, '--resume', tmp_path / 'cut' / 'epoch_1.pth',
                          '--work-dir', tmp_path / 'one')
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'random streams not restored: the checkpoint holds those of 2 ' \
        'process(es), this run has 1' in result.stdout + result.stderr
    assert (tmp_path / 'one' / 'epoch_3.pth').exists()
