"""FastMIM for OpenMMLab. Importing the package registers its modules in
MMPretrain's registries and lets torch's weights-only loader read MMEngine
checkpoints (needed by ``--resume`` on torch >= 2.6)."""
from .engine import allow_mmengine_checkpoint_types

from . import datasets, engine, models, visualization  # noqa: F401,E402

__version__ = '0.1.0'

allow_mmengine_checkpoint_types()
