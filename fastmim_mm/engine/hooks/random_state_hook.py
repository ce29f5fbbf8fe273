import random
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmpretrain.registry import HOOKS

from .resumable_checkpoint_hook import ResumableCheckpointHook


def _local_state() -> dict:
    """This process's torch, numpy, Python (and current CUDA device's)
    random states."""
    state = dict(
        torch=torch.get_rng_state(),
        numpy=np.random.get_state(),
        python=random.getstate())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
    return state


def _checkpoint_due(runner, by_epoch: bool) -> bool:
    """Whether a ``CheckpointHook`` saves at the end of this epoch
    (``by_epoch``) or iteration, by the hook's own schedule. A
    ``ResumableCheckpointHook`` is left out: it announces each save
    (``before_save_checkpoint_all_ranks``)."""
    for hook in runner.hooks:
        if not isinstance(hook, CheckpointHook) or isinstance(
                hook, ResumableCheckpointHook) or hook.by_epoch != by_epoch:
            continue
        if by_epoch:
            due = hook.every_n_epochs(runner, hook.interval, hook.save_begin) \
                or (hook.save_last and hook.is_last_train_epoch(runner))
        else:
            due = hook.every_n_train_iters(
                runner, hook.interval,
                hook.save_begin) or (hook.save_last
                                     and hook.is_last_train_iter(runner))
        if due:
            return True
    return False


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Carry every process's random streams through a checkpoint, for exact
    resume.

    MMEngine re-seeds a resumed run, so masks, dropout and batch
    augmentations drawn in the main process would differ from those of the
    uninterrupted run. This hook stores the torch, numpy, Python and
    CUDA random states in ``meta`` and, when a run resumes
    (``runner.iter > 0``), restores them just before training continues.

    Each process has streams of its own (``diff_rank_seed=True`` draws other
    masks in each), so all of them are saved, as a list indexed by
    rank. Rank 0 alone writes the checkpoint; the others' states reach it
    through one all-gather, made only where the ``CheckpointHook``'s schedule
    saves, or where a ``ResumableCheckpointHook`` says it saves. A
    checkpoint saved outside these (a best-metric one) holds rank 0's
    streams only. Streams are restored only into a run with
    as many processes as the one that saved them; otherwise the run goes on
    freshly seeded, with a warning, as it could not repeat the interrupted
    one anyway.

    Data loader workers keep streams of their own, which the configs'
    ``PerSampleSeedSampler`` seeds for each sample. Starting workers draws
    their base seed from the global torch stream: each epoch, or with
    persistent workers once per run, and then once more in a resumed run.
    The hook gives a loader with persistent workers a generator of its own
    for that draw, so the training stream does not depend on when they
    start (MMEngine's ``worker_init_fn`` re-seeds the workers anyway).
    """

    # Before CheckpointHook ('VERY_LOW'), so the states are gathered before
    # it saves.
    priority = 'LOW'
    _key = 'random_state'

    def __init__(self) -> None:
        self._pending: Optional[List[dict]] = None
        self._gathered: Optional[tuple] = None  # (iteration, states)

    def _gather_if_saving(self, runner, by_epoch: bool) -> None:
        if get_world_size() > 1 and _checkpoint_due(runner, by_epoch):
            self._gathered = (runner.iter, all_gather_object(_local_state()))

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        self._gather_if_saving(runner, by_epoch=False)

    def before_save_checkpoint_all_ranks(self, runner) -> None:
        """Called in every process before a ``ResumableCheckpointHook``
        save (per epoch, inside an epoch, or on a stop signal)."""
        if get_world_size() > 1:
            self._gathered = (runner.iter, all_gather_object(_local_state()))

    def before_train_epoch(self, runner) -> None:
        loader = runner.train_loop.dataloader
        if loader.persistent_workers and loader.generator is None:
            loader.generator = torch.Generator()

    def after_train_epoch(self, runner) -> None:
        self._gather_if_saving(runner, by_epoch=True)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._gathered is not None and self._gathered[0] == runner.iter:
            states = self._gathered[1]
        else:
            states = [_local_state()]
        checkpoint.setdefault('meta', {})[self._key] = states

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('meta', {}).get(self._key)

    def before_train(self, runner) -> None:
        states, self._pending = self._pending, None
        if states is None or runner.iter == 0:
            return  # a fresh run, or weights loaded for a new one
        if len(states) != get_world_size():
            runner.logger.warning(
                f'random streams not restored: the checkpoint holds those of '
                f'{len(states)} process(es), this run has {get_world_size()}.'
                f' Training goes on with freshly seeded streams, so it will '
                f'not repeat the interrupted run exactly.')
            return
        state = states[get_rank()]
        torch.set_rng_state(state['torch'])
        np.random.set_state(state['numpy'])
        random.setstate(state['python'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state(state['cuda'])
