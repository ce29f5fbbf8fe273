"""Let torch's weights-only loader read MMEngine's own checkpoints.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``. MMEngine
0.10.7 calls it without the argument, so ``--resume`` fails on the
``HistoryBuffer`` and numpy objects its message hub stores. Rather than
turning weights-only loading off, the exact types those checkpoints contain
are added to torch's allow-list; anything else in a pickle is still refused.
"""
import builtins
import codecs

import numpy as np
import torch
from mmengine.logging import HistoryBuffer


def _numpy_checkpoint_types() -> list:
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    types = [np.dtype, np.ndarray, multiarray._reconstruct, multiarray.scalar]
    # Arrays and scalars pickle their dtype as its class (numpy >= 1.25).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        types += [
            obj for obj in vars(dtypes).values()
            if isinstance(obj, type) and issubclass(obj, np.dtype)
        ]
    return types


def allow_mmengine_checkpoint_types() -> None:
    """Add the types MMEngine puts in checkpoints to torch's safe globals."""
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return  # torch < 2.4 loads with full pickle anyway
    torch.serialization.add_safe_globals([
        HistoryBuffer,
        *_numpy_checkpoint_types(),
        # numpy arrays pickle their raw bytes through codecs.encode, and
        # dtype classes are looked up with getattr on the numpy module.
        codecs.encode,
        builtins.getattr,
    ])
