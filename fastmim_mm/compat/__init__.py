"""Fixes for the libraries this toolkit runs on. Importing the toolkit
applies none of them; each is scoped to what needs it.

- ``torch_load``: torch >= 2.6 loads weights-only by default and refuses
  MMEngine 0.10.7's own checkpoints (``--resume``);
  :func:`~fastmim_mm.engine.read_checkpoint` allows the types MMEngine
  saves for its own loads only.
- ``scipy_interp2d``: SciPy >= 1.14 removed ``interp2d``, with which
  MMPretrain 1.2.0 resizes Swin/BEiT relative-position tables (window 4
  pre-training to window 7 fine-tuning); ``FastMIMRunner`` resizes them
  with ``RectBivariateSpline`` during its loads.
- ``mmcv_ops``: an mmcv built without CUDA kernels (``tools/setup_env.sh``)
  stops at the first ``nms`` on a GPU. The one process-wide fix:
  ``FastMIMRunner`` routes CUDA tensors' ``nms`` and ``RoIAlign`` to
  torchvision's kernels when it is built on a machine with a CUDA device
  and such an mmcv, and logs it.
- ``private_api``: every private API of another library the toolkit uses,
  with the versions it was checked against.
"""
