"""mmcv's ``nms`` and ``RoIAlign`` on CUDA through torchvision's kernels.

mmcv 2.1.0 has no wheel for current torch; built from source without CUDA
(``tools/setup_env.sh``) its ``_ext`` holds CPU kernels only, and the first
RPN ``nms`` of a Mask R-CNN on a GPU stops with "nms_impl: implementation
for device cuda:0 not found". torchvision ships CUDA kernels for exactly
these ops (``nms``, ``roi_align`` with ``aligned``, and its backward), and
they compute what mmcv's do (tested in float64, forward and gradient).

:func:`route_mmcv_ops_to_torchvision` replaces the ``_ext`` module that
``mmcv.ops.nms`` and ``mmcv.ops.roi_align`` call with
:class:`TorchvisionKernels`, which sends these three kernels to torchvision
for tensors on the routed device types and everything else to ``_ext``.
Every caller goes through them: the RoIAlign extractors, ``batched_nms``
(RPN, ``multiclass_nms``) and ``mmcv.ops.roi_align`` itself (mask targets
through ``BitmapMasks.crop_and_resize``).
"""
import importlib
from typing import Optional, Sequence, Tuple

import torch
import torchvision

from . import private_api

_ROUTED_MODULES = ('mmcv.ops.nms', 'mmcv.ops.roi_align')


def _compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 if any input is, else float32: torchvision wants one dtype
    for boxes and features, and under autocast features are half while
    boxes are float32 (half box coordinates would lose whole pixels)."""
    if any(t.dtype == torch.float64 for t in tensors):
        return torch.float64
    return torch.float32


class TorchvisionKernels:
    """Stands in for mmcv's ``_ext`` module: ``nms``, ``roi_align_forward``
    and ``roi_align_backward`` on tensors of ``device_types`` run
    torchvision's kernels, all else (other devices, max-pooling RoIAlign,
    every other op) mmcv's.

    Args:
        ext (module): mmcv's ``_ext``.
        device_types (sequence[str]): Device types to route, e.g.
            ``('cuda', )``.
    """

    def __init__(self, ext, device_types: Sequence[str]) -> None:
        self.ext = ext
        self.device_types = tuple(device_types)

    def __getattr__(self, name: str):
        return getattr(self.ext, name)

    def _routed(self, tensor: torch.Tensor) -> bool:
        return tensor.device.type in self.device_types

    def nms(self, boxes: torch.Tensor, scores: torch.Tensor,
            iou_threshold: float, offset: int) -> torch.Tensor:
        if not self._routed(boxes):
            return self.ext.nms(
                boxes, scores, iou_threshold=iou_threshold, offset=offset)
        dtype = _compute_dtype(boxes, scores)
        boxes = boxes.to(dtype)
        if offset:
            # mmcv's widths and heights are x2 - x1 + offset: the same IoU
            # as torchvision's on boxes whose far corner moved by offset.
            boxes = torch.cat([boxes[:, :2], boxes[:, 2:4] + offset], dim=1)
        return torchvision.ops.nms(boxes, scores.to(dtype), iou_threshold)

    def roi_align_forward(self, input: torch.Tensor, rois: torch.Tensor,
                          output: torch.Tensor, argmax_y: torch.Tensor,
                          argmax_x: torch.Tensor, **params) -> None:
        """``params``: mmcv's ``aligned_height``, ``aligned_width``,
        ``spatial_scale``, ``sampling_ratio``, ``pool_mode``, ``aligned``.
        """
        if not self._routed(input) or params['pool_mode'] != 1:  # average
            return self.ext.roi_align_forward(input, rois, output, argmax_y,
                                              argmax_x, **params)
        dtype = _compute_dtype(input, rois)
        output.copy_(
            torchvision.ops.roi_align(
                input.to(dtype), rois.to(dtype),
                (params['aligned_height'], params['aligned_width']),
                params['spatial_scale'], params['sampling_ratio'],
                params['aligned']))

    def roi_align_backward(self, grad_output: torch.Tensor, rois: torch.Tensor,
                           argmax_y: torch.Tensor, argmax_x: torch.Tensor,
                           grad_input: torch.Tensor, **params) -> None:
        """``params`` as for :meth:`roi_align_forward`."""
        if not self._routed(grad_output) or params['pool_mode'] != 1:
            return self.ext.roi_align_backward(grad_output, rois, argmax_y,
                                               argmax_x, grad_input, **params)
        dtype = _compute_dtype(grad_output, rois)
        batch, channels, height, width = grad_input.shape
        grad_input.copy_(
            private_api.roi_align_backward(
                grad_output.to(dtype), rois.to(dtype), params['spatial_scale'],
                params['aligned_height'], params['aligned_width'], batch,
                channels, height, width, params['sampling_ratio'],
                params['aligned']))


def mmcv_has_cuda_ops() -> Optional[bool]:
    """Whether mmcv's ``_ext`` was built with CUDA kernels; None when
    ``mmcv.ops`` cannot be imported (mmcv-lite, or no ``_ext`` built)."""
    try:
        from mmcv.ops import get_compiling_cuda_version
    except ImportError:
        return None
    return get_compiling_cuda_version() != 'not available'


def route_mmcv_ops_to_torchvision(
        device_types: Sequence[str]) -> Tuple[str, ...]:
    """Send mmcv's ``nms`` and ``RoIAlign`` kernels for tensors on
    ``device_types`` to torchvision.

    :func:`apply` calls this with ``('cuda', )``. Calling it again changes
    the routed device types (tests route 'cpu' to compare both kernels on
    this machine, then restore what this returned).

    Args:
        device_types (sequence[str]): Device types to route; () routes
            none.

    Returns:
        tuple[str]: The device types routed before (empty when none were,
        or when ``mmcv.ops`` cannot be imported and nothing is routed).
    """
    if mmcv_has_cuda_ops() is None:
        return ()
    before = ()
    for name in _ROUTED_MODULES:
        module = importlib.import_module(name)
        kernels = private_api.mmcv_op_kernels(module)
        if isinstance(kernels, TorchvisionKernels):
            before = kernels.device_types
            kernels.device_types = tuple(device_types)
        else:
            private_api.set_mmcv_op_kernels(
                module, TorchvisionKernels(kernels, device_types))
    return before


def needed() -> bool:
    """A CUDA device, and mmcv's ops built without CUDA kernels."""
    return torch.cuda.is_available() and mmcv_has_cuda_ops() is False


def apply() -> bool:
    """Route CUDA tensors' ``nms`` and ``RoIAlign`` to torchvision where
    :func:`needed`; True if this call changed the routing."""
    if not needed():
        return False
    return route_mmcv_ops_to_torchvision(('cuda', )) != ('cuda', )
