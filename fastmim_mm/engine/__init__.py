from .checkpoint import (CheckpointFileError, allow_mmengine_checkpoint_types,
                         read_checkpoint)
from .checkpoint_fit import CheckpointMismatchError, check_checkpoint_loading
from .fileio import AtomicLocalBackend
from .hooks import *  # noqa: F401,F403
from .runner import FastMIMRunner

__all__ = [
    'allow_mmengine_checkpoint_types', 'AtomicLocalBackend',
    'CheckpointFileError', 'CheckpointMismatchError',
    'check_checkpoint_loading', 'FastMIMRunner', 'read_checkpoint'
]
