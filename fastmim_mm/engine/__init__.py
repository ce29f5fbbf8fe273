from .checkpoint import allow_mmengine_checkpoint_types
from .fileio import AtomicLocalBackend
from .hooks import *  # noqa: F401,F403
from .runner import FastMIMRunner

__all__ = [
    'allow_mmengine_checkpoint_types', 'AtomicLocalBackend', 'FastMIMRunner'
]
