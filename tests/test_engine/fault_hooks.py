"""Hooks that build faults into a run: a NaN, an interruption, a stop
signal. Importable by the processes a test starts
(``custom_imports=['tests.test_engine.fault_hooks']`` with the repository
root on PYTHONPATH)."""
import os
import signal
import subprocess

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from fastmim_mm.engine.hooks import PreemptionHook


@HOOKS.register_module(force=True)
class PoisonHook(Hook):
    """Turns a weight into NaN before the given iteration (0-based), in the
    process of the given rank, or in every process."""

    def __init__(self, at_iter: int, rank=None):
        self.at_iter = at_iter
        self.rank = rank

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter != self.at_iter or self.rank not in (None, get_rank()):
            return
        model = getattr(runner.model, 'module', runner.model)
        with torch.no_grad():
            model.neck.pred.bias.fill_(float('nan'))


@HOOKS.register_module(force=True)
class StopAfterEpochHook(Hook):
    """Ends a run after ``stop_epoch`` epochs, as an interruption would."""
    priority = 'LOWEST'  # after the checkpoint of that epoch is saved

    def __init__(self, stop_epoch: int):
        self.stop_epoch = stop_epoch

    def after_train_epoch(self, runner):
        if runner.epoch + 1 >= self.stop_epoch:  # epoch counts from 0 here
            runner.train_loop.stop_training = True


@HOOKS.register_module(force=True)
class SignalHook(Hook):
    """Sends ``signal`` during the given iteration (0-based; its batch
    loaded), as a scheduler would: to this process, or with ``group`` to
    every process of its process group, its data loader workers too, from
    a process of another session (as Slurm's step daemon does at a time
    limit: torch's workers die of a SIGTERM unless their parent sends it);
    in the process of the given rank, or in every process."""
    priority = 'HIGHEST'

    def __init__(self, at_iter: int, signal='SIGTERM', rank=None, group=False):
        self.at_iter = at_iter
        self.signal = signal
        self.rank = rank
        self.group = group

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter != self.at_iter or self.rank not in (None, get_rank()):
            return
        sig = getattr(signal, self.signal)
        if self.group:
            subprocess.run(
                ['kill', '-s', self.signal[3:], '--', f'-{os.getpgrp()}'],
                start_new_session=True,
                check=True)
        else:
            os.kill(os.getpid(), sig)


@HOOKS.register_module(force=True)
class InProcessPreemptionHook(PreemptionHook):
    """``PreemptionHook`` that raises ``SystemExit`` instead of ending the
    process, for runs inside the test process."""

    def _exit(self, runner):
        self.after_train(runner)
        raise SystemExit(self.exit_code)
