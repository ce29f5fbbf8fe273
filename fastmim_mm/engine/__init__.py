from .checkpoint import allow_mmengine_checkpoint_types
from .hooks import *  # noqa: F401,F403

__all__ = ['allow_mmengine_checkpoint_types']
