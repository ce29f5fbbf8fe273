"""MMEngine checkpoints under torch's weights-only ``torch.load``.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``. MMEngine
0.10.7 calls it without the argument, so its own checkpoints stop loading
(``--resume``: "Unsupported global: ... HistoryBuffer"): the message hub it
saves holds ``HistoryBuffer`` objects and numpy arrays and scalars. Rather
than turning weights-only loading off,
:func:`~fastmim_mm.engine.read_checkpoint` allows the exact types those
checkpoints contain for its own loads; anything else is still refused, and
torch's allow-list is left as it was.
"""
import builtins
import codecs

import numpy as np
from mmengine.logging import HistoryBuffer

from .private_api import numpy_pickle_helpers


def mmengine_checkpoint_types() -> list:
    """The globals an MMEngine checkpoint pickles besides tensors."""
    types = [
        HistoryBuffer,
        np.dtype,
        np.ndarray,
        *numpy_pickle_helpers(),
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
