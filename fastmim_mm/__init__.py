"""FastMIM for OpenMMLab. Importing the package registers its modules in
MMPretrain's registries, lets torch's weights-only loader read MMEngine
checkpoints (needed by ``--resume`` on torch >= 2.6), checks that every
checkpoint MMEngine loads is one and fits the model, makes MMPretrain
resize Swin relative-position tables without SciPy's removed interp2d and
runs mmcv's nms / RoIAlign on CUDA through torchvision when mmcv has no
CUDA kernels of its own."""
from .engine import allow_mmengine_checkpoint_types, check_checkpoint_loading
from .models.utils import patch_mmpretrain
from .ops import route_mmcv_ops_to_torchvision

from . import datasets, engine, models, visualization  # noqa: F401,E402

__version__ = '0.1.0'

allow_mmengine_checkpoint_types()
check_checkpoint_loading()
patch_mmpretrain()
route_mmcv_ops_to_torchvision()
