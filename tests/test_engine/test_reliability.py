"""Faults built for real: a killed process, a save cut short, a NaN loss,
a malicious checkpoint."""
import errno
import io
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.runner import find_latest_checkpoint

from fastmim_mm.engine import (AtomicLocalBackend, CheckedLoading,
                               CheckpointFileError, FastMIMRunner,
                               read_checkpoint)
from ..conftest import ROOT, TRAIN_PY, run_train_py, runner_config
from .fault_hooks import PoisonHook  # noqa: F401  (registers it)
from .run_logs import merged_losses, scalar_runs


def _train(*args):
    result = run_train_py(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _exact_config(tmp_path, image_folder, name):
    cfg = runner_config(
        tmp_path / name,
        image_folder,
        max_epochs=4,
        randomness=dict(seed=3, deterministic=True),
        log_processor=dict(window_size=1),
        param_scheduler=[
            dict(
                type='CosineAnnealingLR', T_max=4, by_epoch=True, eta_min=1e-5)
        ])
    cfg.optim_wrapper.optimizer.lr = 0.05  # per 256 images
    cfg.auto_scale_lr = dict()
    # Checkpoints inside epochs too, the newest kept.
    cfg.default_hooks.checkpoint.iter_interval = 3
    # The configs' loader: persistent workers (PerSampleSeedSampler).
    cfg.train_dataloader.num_workers = 2
    cfg.train_dataloader.persistent_workers = True
    cfg.custom_hooks = [
        dict(
            type='ProgressiveResolutionHook',
            phases=[(0, 32, 4, 1), (2, 64, 8, 2)])
    ]
    path = str(tmp_path / f'{name}.py')
    cfg.dump(path)
    return path


def test_killed_run_resumes_exactly_inside_an_epoch(image_folder, tmp_path):
    full_cfg = _exact_config(tmp_path, image_folder, 'full')
    _train(full_cfg)
    full = merged_losses(tmp_path / 'full')
    assert sorted(full) == list(range(1, 13))  # 4 + 4 + 2 + 2 iterations

    cut_cfg = _exact_config(tmp_path, image_folder, 'cut')
    proc = subprocess.Popen(
        [sys.executable, str(TRAIN_PY), cut_cfg],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    # iter_6.pth (2 of epoch 2's 4 batches) is saved, then named in
    # last_checkpoint: wait for the name, so the kill falls after both.
    last_file = tmp_path / 'cut' / 'last_checkpoint'

    def named_iter() -> int:
        name = last_file.read_text().rsplit('/', 1)[-1] \
            if last_file.exists() else ''
        return int(name[5:-4]) if name.startswith('iter_') else 0

    deadline = time.time() + 240
    while proc.poll() is None and named_iter() < 6:
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # killed, not finished
    last = (tmp_path / 'cut' / 'last_checkpoint').read_text()
    at = read_checkpoint(last)['meta']['iter']
    assert at in (6, 9)  # iter_6.pth, or iter_9.pth had the kill been late
    killed_run = scalar_runs(tmp_path / 'cut')[0]
    assert max(killed_run) < 12

    _train(cut_cfg, '--resume')
    runs = scalar_runs(tmp_path / 'cut')
    assert len(runs) == 2
    # The resumed run starts after the checkpoint's iteration, inside the
    # epoch; its workers start afresh where the uninterrupted run's went
    # on, and it then enters phase 1. All must equal the uninterrupted run.
    assert sorted(runs[1]) == list(range(at + 1, 13))
    for run in runs:
        for it, loss in run.items():
            assert loss == pytest.approx(full[it], abs=1e-6, rel=0), it


def _run_with_failing_save(tmp_path, image_folder, monkeypatch, hook_type,
                           failing, nth):
    """Train 2 epochs keeping 1 checkpoint; the ``nth`` flush to disk of a
    file named ``failing`` fails as on a full disk, inside train()."""
    cfg = runner_config(tmp_path, image_folder, max_epochs=2)
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    if hook_type == 'CheckpointHook':  # MMEngine's own, for comparison
        cfg.default_hooks.checkpoint = dict(
            type='CheckpointHook',
            interval=1,
            max_keep_ckpts=1,
            backend_args=dict(backend='atomic_local'))
        cfg.default_hooks.preemption = None
    real_fsync, seen = os.fsync, []

    def fsync(fd):
        name = os.path.basename(os.readlink(f'/proc/self/fd/{fd}'))
        if name.startswith(f'.{failing}.'):  # AtomicLocalBackend's temp
            seen.append(name)
            if len(seen) == nth:
                raise OSError(errno.ENOSPC, 'No space left on device')
        real_fsync(fd)

    monkeypatch.setattr(os, 'fsync', fsync)
    with pytest.raises(OSError, match='No space left'):
        FastMIMRunner.from_cfg(cfg).train()
    monkeypatch.undo()
    assert len(seen) == nth
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]
    return sorted(f for f in os.listdir(tmp_path) if f.endswith('.pth'))


@pytest.mark.parametrize('failing,nth', [('epoch_2.pth', 1),
                                         ('last_checkpoint', 2)])
def test_failed_save_inside_train_keeps_the_previous_checkpoint(
        image_folder, tmp_path, monkeypatch, failing, nth):
    """The save after epoch 2 fails, writing the checkpoint or
    last_checkpoint: epoch_1.pth (which max_keep_ckpts=1 drops once
    epoch_2.pth is saved) and last_checkpoint naming it are intact, for
    --resume to go on from."""
    kept = _run_with_failing_save(tmp_path, image_folder, monkeypatch,
                                  'ResumableCheckpointHook', failing, nth)
    # Written whole when last_checkpoint failed, absent when it failed.
    assert kept == ['epoch_1.pth'] + (['epoch_2.pth'] if nth == 2 else [])
    assert find_latest_checkpoint(str(tmp_path)) == str(tmp_path /
                                                        'epoch_1.pth')
    meta = read_checkpoint(tmp_path / 'epoch_1.pth')['meta']
    assert (meta['epoch'], meta['iter']) == (1, 4)


def test_mmengine_checkpoint_hook_loses_it(image_folder, tmp_path,
                                           monkeypatch):
    """What the test above guards against: MMEngine's CheckpointHook drops
    epoch_1.pth before saving epoch_2.pth, so the failed save leaves no
    checkpoint, and last_checkpoint names the dropped one."""
    kept = _run_with_failing_save(tmp_path, image_folder, monkeypatch,
                                  'CheckpointHook', 'epoch_2.pth', 1)
    assert kept == []
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path /
                                                             'epoch_1.pth')


def test_save_cut_short_keeps_previous_checkpoint(tmp_path, monkeypatch):
    backend = AtomicLocalBackend()
    path = tmp_path / 'epoch_1.pth'
    good = dict(state_dict=dict(w=torch.ones(3)))
    buf = io.BytesIO()
    torch.save(good, buf)
    backend.put(buf.getvalue(), path)

    def die(*args):
        raise KeyboardInterrupt  # the process is stopped mid-save

    monkeypatch.setattr(os, 'replace', die)
    with pytest.raises(KeyboardInterrupt):
        backend.put(b'half a checkpoint', path)
    monkeypatch.undo()
    assert torch.equal(read_checkpoint(path)['state_dict']['w'], torch.ones(3))
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temporary left


def test_killed_save_leaves_no_partial_file(tmp_path):
    """A process killed while writing a large checkpoint."""
    script = ('import sys, time, os\n'
              'from fastmim_mm.engine import AtomicLocalBackend\n'
              'real_open = os.fdopen\n'
              'def slow_fdopen(*a, **k):\n'
              '    f = real_open(*a, **k)\n'
              '    w = f.write\n'
              '    def write(data):\n'
              '        w(data[:len(data) // 2]); f.flush()\n'
              '        print("half", flush=True); time.sleep(60)\n'
              '    f.write = write\n'
              '    return f\n'
              'os.fdopen = slow_fdopen\n'
              'AtomicLocalBackend().put(b"x" * 10_000_000, sys.argv[1])\n')
    target = tmp_path / 'ckpt.pth'
    target.write_bytes(b'previous complete checkpoint')
    proc = subprocess.Popen([sys.executable, '-c', script,
                             str(target)],
                            stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == 'half'
    proc.kill()
    proc.wait()
    assert target.read_bytes() == b'previous complete checkpoint'


def test_non_finite_loss_stops_without_checkpoint(image_folder, tmp_path):
    cfg = runner_config(tmp_path, image_folder, max_epochs=3)
    cfg.custom_hooks.append(dict(type='PoisonHook', at_iter=6))
    runner = FastMIMRunner.from_cfg(cfg)
    with pytest.raises(FloatingPointError) as err:
        runner.train()
    message = str(err.value)
    assert 'iteration 7' in message and 'epoch 2' in message
    assert 'loss=nan' in message and 'epoch_1.pth' in message
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith('.pth')) \
        == ['epoch_1.pth']
    ckpt = read_checkpoint(tmp_path / 'epoch_1.pth')
    assert all(
        torch.isfinite(v).all() for v in ckpt['state_dict'].values()
        if v.is_floating_point())


class _RunsCode:

    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null', ))


def test_crafted_checkpoint_is_refused(image_folder, tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, payload=_RunsCode()), path)
    with pytest.raises(pickle.UnpicklingError, match='weights_only'):
        torch.load(path)
    from mmengine.runner import CheckpointLoader
    with CheckedLoading(), pytest.raises(
            CheckpointFileError, match='posix.system'):
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    # Through tools/train.py: one clear line, nothing executed.
    cfg = str(tmp_path / 'cfg.py')
    runner_config(tmp_path / 'work', image_folder, custom_hooks=[]).dump(cfg)
    result = run_train_py(cfg, '--resume', path)
    assert result.returncode == 1
    assert f'train.py: error: {path} holds a posix.system object, which ' \
        'weights-only loading refuses (unpickling it could run code).' \
        in result.stderr
    assert 'weights_only=False' not in result.stderr
    assert 'Traceback' not in result.stderr
