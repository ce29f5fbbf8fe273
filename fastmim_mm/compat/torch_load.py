"""MMEngine checkpoints under torch's weights-only ``torch.load``.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``. MMEngine
0.10.7 calls it without the argument, so its own checkpoints stop loading
(``--resume``: "Unsupported global: ... HistoryBuffer"): the message hub it
saves holds ``HistoryBuffer`` objects and numpy arrays and scalars. Rather
than turning weights-only loading off, the exact types those checkpoints
contain are added to torch's allow-list; anything else is still refused.
"""
import builtins
import codecs

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.utils import digit_version


def mmengine_checkpoint_types() -> list:
    """The globals an MMEngine checkpoint pickles besides tensors."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    types = [
        HistoryBuffer,
        np.dtype,
        np.ndarray,
        multiarray._reconstruct,
        multiarray.scalar,
        # Arrays pickle their raw bytes through codecs.encode, and dtype
        # classes are looked up with getattr on the numpy module.
        codecs.encode,
        builtins.getattr
    ]
    # Arrays and scalars pickle their dtype as its class (numpy >= 1.25).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        types += [
            obj for obj in vars(dtypes).values()
            if isinstance(obj, type) and issubclass(obj, np.dtype)
        ]
    return types


def needed() -> bool:
    """torch >= 2.6 loads weights-only by default."""
    return digit_version(torch.__version__) >= digit_version('2.6.0')


def apply() -> None:
    """Add :func:`mmengine_checkpoint_types` to torch's safe globals."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_types())
