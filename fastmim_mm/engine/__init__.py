from .checkpoint import CheckpointFileError, read_checkpoint
from .checkpoint_fit import CheckedLoading, CheckpointMismatchError
from .fileio import AtomicLocalBackend
from .flexible_runner import FastMIMFlexibleRunner
from .fsdp_strategy import FastMIMFSDPStrategy
from .hooks import *  # noqa: F401,F403
from .runner import FastMIMRunner

__all__ = [
    'AtomicLocalBackend', 'CheckedLoading', 'CheckpointFileError',
    'CheckpointMismatchError', 'FastMIMFlexibleRunner', 'FastMIMFSDPStrategy',
    'FastMIMRunner', 'read_checkpoint'
]
