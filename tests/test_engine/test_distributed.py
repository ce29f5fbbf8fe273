"""tools/dist_train.sh on CPU: torchrun, gloo, two processes."""
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

from ..conftest import ROOT, free_port, runner_config


def _config(tmp_path, image_folder, name, batch_size):
    cfg = runner_config(
        tmp_path / name, image_folder, batch_size=batch_size, max_epochs=2,
        input_size=64,
        randomness=dict(seed=0, diff_rank_seed=False), custom_hooks=[])
    # A process draws the masks of its own samples, so per-rank masks can
    # never equal one process's draw for the whole batch. Masking every
    # block makes the masks identical in both set-ups, and a fixed resize
    # does the same for the crop, while sharding, DDP's gradient averaging
    # and the optimiser still decide the losses.
    cfg.model.mask_generator.mask_ratio = 0.95  # keeps int(16 * .05) = 0
    cfg.train_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(64, 64)),
        dict(type='PackInputs'),
    ]
    path = str(tmp_path / f'{name}.py')
    cfg.dump(path)
    return path


def test_two_cpu_processes_match_one(image_folder, tmp_path):
    env = dict(os.environ, PORT=str(free_port()), OMP_NUM_THREADS='1')
    two = _config(tmp_path, image_folder, 'two', batch_size=4)
    result = subprocess.run(
        ['bash', str(ROOT / 'tools' / 'dist_train.sh'), two, '2'],
        cwd=ROOT, env=dict(env, PATH=f'{os.path.dirname(sys.executable)}:'
                           f'{env["PATH"]}'),
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ckpts = sorted(f for f in os.listdir(tmp_path / 'two')
                   if f.endswith('.pth'))
    assert ckpts == ['epoch_1.pth', 'epoch_2.pth']  # saved once, by rank 0

    one = _config(tmp_path, image_folder, 'one', batch_size=8)
    result = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'train.py'), one], cwd=ROOT,
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    # Same data, same masks, DDP's averaged gradients: the two runs must
    # end with the same weights and so give the same loss on any batch.
    two_sd = torch.load(tmp_path / 'two' / 'epoch_2.pth')['state_dict']
    one_sd = torch.load(tmp_path / 'one' / 'epoch_2.pth')['state_dict']
    initial = torch.load(tmp_path / 'two' / 'epoch_1.pth')['state_dict']
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
        'gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
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
