import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Carry the random streams through a checkpoint, for exact resume.

    MMEngine re-seeds a resumed run, so masks, augmentations drawn in the
    main process and the data loader's base seed would differ from those of
    the uninterrupted run. This hook stores the torch, numpy and Python
    random states of the saving process in ``meta`` and, when a run resumes
    (``runner.iter > 0``), restores them just before training continues.
    In a multi-process run the states are those of rank 0.
    """

    priority = 'VERY_LOW'
    _key = 'random_state'

    def __init__(self) -> None:
        self._pending = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(
            torch=torch.get_rng_state(),
            numpy=np.random.get_state(),
            python=random.getstate())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint.setdefault('meta', {})[self._key] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('meta', {}).get(self._key)

    def before_train(self, runner) -> None:
        state, self._pending = self._pending, None
        if state is None or runner.iter == 0:
            return  # a fresh run, or weights loaded for a new one
        torch.set_rng_state(state['torch'])
        np.random.set_state(state['numpy'])
        random.setstate(state['python'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
