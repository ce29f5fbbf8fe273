import multiprocessing
import os
import signal
import sys
import threading
from typing import Sequence

import torch
from mmengine.dist import all_reduce, barrier, get_world_size
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from .resumable_checkpoint_hook import (ResumableCheckpointHook,
                                        gradients_applied)

#: Exit status of a run that :class:`PreemptionHook` stopped after saving
#: its checkpoint: EX_TEMPFAIL of sysexits.h, "try again later". A requeue
#: script tells it from a failure (1) and from a finished run (0).
PREEMPTED_EXIT_CODE = 75


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Stop on a scheduler's signal after the iteration in progress, with a
    checkpoint of that iteration, and exit with status 75.

    From ``before_train`` to ``after_train`` the process handles the given
    signals (by default SIGTERM, which Slurm and most schedulers send
    before they kill a job, and SIGUSR1, the earlier warning a Slurm job
    asks for with ``--signal=USR1@<seconds>``) by noting them. After each
    training iteration all processes agree whether any got one (one
    all-reduce of a number). If so (with gradient accumulation, once the
    window ends: accumulated gradients are in no checkpoint), every
    process saves that iteration
    through the runner's :class:`ResumableCheckpointHook` (atomically; a
    run resumed from it continues inside the epoch), waits until all have,
    and exits with ``exit_code`` at once, without the interpreter's
    teardown, so that the processes of a multi-process run end together.
    Rank 0 logs the signal and the checkpoint first. A signal that arrives
    during validation takes effect after the next training iteration.

    A SIGTERM sent to every process of the job (as Slurm does at its time
    limit) also ends the data loader workers, and torch's SIGCHLD handler
    would then fail the main process before it could save; so on a stop
    signal that handler is set aside. The batch in progress is trained and
    saved, unless the signal comes while the main process waits for a
    batch whose worker it ended. Workers survive SIGUSR1, so Slurm's
    ``--signal=USR1@<seconds>`` warning is the safer way.

    Args:
        signals (Sequence[str]): Names of the signals that stop the run.
            Defaults to ``('SIGTERM', 'SIGUSR1')``.
        exit_code (int): Exit status after the save. Defaults to 75.
    """

    priority = 'LOWEST'  # after the iteration's own hooks, saves included

    def __init__(self,
                 signals: Sequence[str] = ('SIGTERM', 'SIGUSR1'),
                 exit_code: int = PREEMPTED_EXIT_CODE) -> None:
        self.signals = []
        for name in signals:
            sig = getattr(signal, str(name), None)
            if not isinstance(sig, signal.Signals):
                raise ValueError(
                    f'PreemptionHook: {name!r} is not the name of a signal '
                    f'(such as SIGTERM or SIGUSR1).')
            self.signals.append(sig)
        if not 2 <= exit_code <= 125:
            raise ValueError(
                f'PreemptionHook: exit_code {exit_code} would be taken for '
                f'success, failure or a signal; choose one from 2 to 125.')
        self.exit_code = exit_code
        self._received = 0
        self._previous: dict = {}
        self._checkpoint = None

    def before_train(self, runner) -> None:
        found = [
            h for h in runner.hooks if isinstance(h, ResumableCheckpointHook)
        ]
        if not found:
            raise ValueError(
                "default_hooks.preemption saves through a "
                "ResumableCheckpointHook: set default_hooks.checkpoint.type="
                "'ResumableCheckpointHook' (as configs/_base_/"
                "default_runtime.py does), or default_hooks.preemption=None.")
        self._checkpoint = found[0]
        if threading.current_thread() is not threading.main_thread():
            runner.logger.warning(
                'PreemptionHook: training runs outside the main thread, '
                'where signals cannot be handled; a stop signal will end '
                'the run without a checkpoint.')
            return
        self._received = 0
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._note)

    def _note(self, signum, frame) -> None:
        self._received = signum
        self._set_sigchld_aside()

    def _set_sigchld_aside(self) -> None:
        """torch's SIGCHLD handler raises when a data loader worker ends."""
        if signal.SIGCHLD not in self._previous and \
                threading.current_thread() is threading.main_thread():
            self._previous[signal.SIGCHLD] = signal.signal(
                signal.SIGCHLD, signal.SIG_DFL)

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        received = torch.tensor([self._received], dtype=torch.int64)
        if get_world_size() > 1:
            all_reduce(received, op='max')
        if not received.item() or not gradients_applied(runner):
            return  # or at the end of the accumulation window
        path = self._checkpoint.save_iteration(runner)
        barrier()
        runner.logger.warning(
            f'{signal.Signals(int(received.item())).name} received: stopped '
            f'after iteration {runner.iter + 1} (epoch {runner.epoch + 1}) '
            f'with checkpoint {path}; exit status {self.exit_code}. '
            f'Resume with --resume (tools/slurm_train.sh requeues and '
            f'resumes by itself).')
        self._exit(runner)

    def _exit(self, runner) -> None:
        for handler in runner.logger.handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        self._set_sigchld_aside()
        for child in multiprocessing.active_children():
            child.kill()
        os._exit(self.exit_code)

    def after_train(self, runner) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
