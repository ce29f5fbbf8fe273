from .checkpoint import CheckpointFileError, read_checkpoint
from .checkpoint_fit import CheckpointMismatchError, check_checkpoint_loading
from .fileio import AtomicLocalBackend
from .hooks import *  # noqa: F401,F403
from .runner import FastMIMRunner

__all__ = [
    'AtomicLocalBackend', 'CheckpointFileError', 'CheckpointMismatchError',
    'check_checkpoint_loading', 'FastMIMRunner', 'read_checkpoint'
]
