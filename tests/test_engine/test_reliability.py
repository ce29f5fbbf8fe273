"""Faults built for real: a killed process, a save cut short, a NaN loss,
a malicious checkpoint."""
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch

from fastmim_mm.engine import (AtomicLocalBackend, CheckedLoading,
                               CheckpointFileError, FastMIMRunner,
                               read_checkpoint)
from ..conftest import ROOT, TRAIN_PY, run_train_py, runner_config
from .fault_hooks import PoisonHook  # noqa: F401  (registers it)


def _train(*args):
    result = run_train_py(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _losses(work_dir):
    """Per-iteration losses from MMEngine's scalar log (window size 1)."""
    logs = sorted(
        os.path.join(dp, f) for dp, _, fs in os.walk(work_dir) for f in fs
        if f == 'scalars.json')
    losses = {}
    for log in logs:
        with open(log) as f:
            for line in f:
                record = json.loads(line)
                if 'loss' in record:
                    losses[record['iter']] = record['loss']
    return losses


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


def test_killed_run_resumes_exactly(image_folder, tmp_path):
    full_cfg = _exact_config(tmp_path, image_folder, 'full')
    _train(full_cfg)
    full = _losses(tmp_path / 'full')
    assert sorted(full) == list(range(1, 13))  # 4 + 4 + 2 + 2 iterations

    cut_cfg = _exact_config(tmp_path, image_folder, 'cut')
    proc = subprocess.Popen(
        [sys.executable, str(TRAIN_PY), cut_cfg],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    ckpt = tmp_path / 'cut' / 'epoch_1.pth'  # inside phase 0
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists()

    _train(cut_cfg, '--resume')
    resumed = _losses(tmp_path / 'cut')
    # Iterations 1-4 (epoch 1) ran before the kill, 5-12 after --resume,
    # whose workers start afresh where the uninterrupted run's went on,
    # and which then enters phase 1; all must equal the uninterrupted run.
    assert sorted(resumed) == list(range(1, 13))
    for it in range(1, 13):
        assert resumed[it] == pytest.approx(full[it], abs=1e-6, rel=0), it


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
