"""Every private API of another library that this toolkit uses.

Each is wrapped here, under a name that says what it is for, and the rest
of the toolkit goes through the wrapper. They were checked against the
versions in :data:`CHECKED_VERSIONS`; ``tests/test_compat/
test_private_api.py`` fails when an installed version differs, so that an
upgrade is a conscious step: re-read each entry below against the new
version, then update :data:`CHECKED_VERSIONS`.
"""
from typing import Callable

import torch
from mmengine.runner import checkpoint as mm_checkpoint

# Exact versions; numpy by major version (its pickle helpers moved to
# ``numpy._core`` in 2.0 and stay there within it).
CHECKED_VERSIONS = dict(
    torch='2.14.1',
    torchvision='0.29.1',
    mmengine='0.10.7',
    mmcv='2.1.0',
    mmpretrain='1.2.0',
    numpy='2')

# Private methods the toolkit overrides in subclasses (no wrapper can stand
# in for an override). FastMIMRunner checks the loads of
# Runner._init_model_weights, which initialises the model's weights, and
# compiles the forward pass only in Runner._maybe_compile.
OVERRIDDEN = ('mmengine.runner.Runner._init_model_weights',
              'mmengine.runner.Runner._maybe_compile')

# mmengine.runner.checkpoint ------------------------------------------------


def load_checkpoint_file(filename: str, map_location=None) -> dict:
    """``_load_checkpoint``: a checkpoint through the scheme its name
    selects (local file, ``torchvision://``, ...)."""
    return mm_checkpoint._load_checkpoint(filename, map_location)


def prefix_checkpoint_loader() -> Callable:
    """``_load_checkpoint_with_prefix``, which ``PretrainedInit`` looks up
    in its module on each call when ``init_cfg`` has a ``prefix``."""
    return mm_checkpoint._load_checkpoint_with_prefix


def set_prefix_checkpoint_loader(loader: Callable) -> None:
    mm_checkpoint._load_checkpoint_with_prefix = loader


def local_checkpoint_loader() -> Callable:
    """The loader ``CheckpointLoader`` uses for local files (the scheme
    registered under the empty prefix)."""
    return mm_checkpoint.CheckpointLoader._schemes['']


def set_local_checkpoint_loader(loader: Callable) -> None:
    mm_checkpoint.CheckpointLoader.register_scheme(
        prefixes='', loader=loader, force=True)


# mmengine: Config, Runner, OptimWrapper ------------------------------------


def config_tree(cfg) -> dict:
    """A ``Config``'s own dict (``_cfg_dict``), without its attribute
    access."""
    return cfg._cfg_dict


def runner_randomness(runner) -> dict:
    """The ``randomness`` settings the Runner was built with."""
    return runner._randomness_cfg


def runner_loops(runner) -> tuple:
    """The Runner's train and test loops as they are: built loops, or the
    configs of loops not built yet (``runner.train_loop`` would build)."""
    return runner._train_loop, runner._test_loop


def runner_load_settings(runner) -> tuple:
    """``(has_loaded, resume, load_from)``: whether the Runner loaded a
    checkpoint, whether it resumes, and the file it was given."""
    return runner._has_loaded, runner._resume, runner._load_from


def set_max_iters(loop, max_iters: int) -> None:
    """The iterations an ``EpochBasedTrainLoop`` runs in all (set from
    ``max_epochs`` when it is built)."""
    loop._max_iters = max_iters


def fsdp_strategy():
    """MMEngine's ``FSDPStrategy``, which only its private package
    ``mmengine._strategy`` exports (``FlexibleRunner`` builds it by name)."""
    from mmengine._strategy import FSDPStrategy
    return FSDPStrategy


def set_accumulative_counts(optim_wrapper, counts: int) -> None:
    """The gradient accumulation of an ``OptimWrapper`` after it was built
    (its constructor is the only public way to set it)."""
    optim_wrapper._accumulative_counts = counts


# mmcv ----------------------------------------------------------------------


def flip_direction(random_flip):
    """The direction a ``RandomFlip`` draws (None: no flip), drawn from
    its random streams as its ``transform`` does."""
    return random_flip._choose_direction()


def mmcv_op_kernels(module):
    """The C++ extension module an ``mmcv.ops`` module calls
    (``ext_module``)."""
    return module.ext_module


def set_mmcv_op_kernels(module, kernels) -> None:
    module.ext_module = kernels


# torch ---------------------------------------------------------------------


def sharded_tensor_types() -> list:
    """The classes a sharded FSDP checkpoint (``state_dict_cfg='local'``)
    pickles besides tensors: ``ShardedTensor`` and its shards, metadata and
    sharding specs, from torch's private ``torch.distributed._shard``
    package."""
    from torch.distributed import remote_device
    from torch.distributed._shard.metadata import ShardMetadata
    from torch.distributed._shard.sharded_tensor import Shard, ShardedTensor
    from torch.distributed._shard.sharded_tensor.metadata import (
        MEM_FORMAT_ENCODING, ShardedTensorMetadata, TensorProperties)
    from torch.distributed._shard.sharding_spec import (ChunkShardingSpec,
                                                        EnumerableShardingSpec)
    return [
        ShardedTensor, ShardedTensor.ProcessGroupState, Shard, ShardMetadata,
        ShardedTensorMetadata, TensorProperties, MEM_FORMAT_ENCODING,
        ChunkShardingSpec, EnumerableShardingSpec, remote_device._remote_device
    ]


# torchvision ---------------------------------------------------------------


def roi_align_backward(*args) -> torch.Tensor:
    """torchvision's ``roi_align`` backward kernel, which its autograd
    function calls and does not export."""
    return torch.ops.torchvision._roi_align_backward(*args)


# numpy ---------------------------------------------------------------------


def numpy_pickle_helpers() -> list:
    """The functions numpy arrays and scalars pickle through."""
    from numpy._core import multiarray
    return [multiarray._reconstruct, multiarray.scalar]


# mmpretrain ----------------------------------------------------------------


def table_resizer(module) -> Callable:
    """The relative-position table resize function a backbone module
    (``mmpretrain.models.backbones.swin_transformer`` or ``beit``) looks up
    in its own namespace each time it loads a checkpoint."""
    return module.resize_relative_position_bias_table


def set_table_resizer(module, resize: Callable) -> None:
    module.resize_relative_position_bias_table = resize
