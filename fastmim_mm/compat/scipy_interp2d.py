"""Resize Swin/BEiT relative-position bias tables without SciPy's interp2d.

MMPretrain 1.2.0 resizes these tables (e.g. window 4 in FastMIM pre-training
to window 7 for fine-tuning) with ``scipy.interpolate.interp2d``, which SciPy
1.14 removed, so loading such a checkpoint fails. This module computes the
same interpolation with ``RectBivariateSpline`` (what interp2d did on a
rectilinear grid: an interpolating bicubic spline, s=0);
:func:`tables_resized_without_interp2d` makes MMPretrain's backbones use it
for the loads inside a block (``FastMIMRunner`` opens one around its loads).
"""
from contextlib import contextmanager

import numpy as np
import scipy
import torch
from mmengine.utils import digit_version
from mmpretrain.models.backbones import beit, swin_transformer
from scipy.interpolate import RectBivariateSpline

from . import private_api


def _source_offsets(src_size: int, dst_size: int) -> np.ndarray:
    """Where the source table's rows sit on the destination's offset axis.

    As in BEiT: the source offsets are spread geometrically, 1, 1 + q,
    1 + q + q^2, ..., with q chosen (by bisection) so that the largest
    offset just reaches the destination's.
    """
    half_src, half_dst = src_size // 2, dst_size // 2

    def reach(q):
        return (1.0 - q**half_src) / (1.0 - q)

    low, high = 1.01, 1.5
    while high - low > 1e-6:
        q = (low + high) / 2.0
        if reach(q) > half_dst:
            high = q
        else:
            low = q
    steps = q**np.arange(half_src)  # 1, q, q^2, ...
    positive = np.cumsum(np.concatenate([[1.0], steps[1:]]))
    return np.concatenate([-positive[::-1], [0.0], positive])


def resize_relative_position_bias_table(src_shape: int, dst_shape: int,
                                        table: torch.Tensor,
                                        num_head: int) -> torch.Tensor:
    """Resize a (src_shape^2) x num_head table to (dst_shape^2) x num_head.

    Same signature and result as MMPretrain's function of this name.
    """
    src = _source_offsets(src_shape, dst_shape)
    half = dst_shape // 2
    dst = np.arange(-half, half + 0.1, 1.0)
    columns = []
    for head in range(num_head):
        grid = table[:, head].view(src_shape, src_shape).float().cpu().numpy()
        spline = RectBivariateSpline(src, src, grid, kx=3, ky=3, s=0)
        columns.append(torch.from_numpy(spline(dst, dst)).reshape(-1, 1))
    return torch.cat(columns, dim=1).to(table.device, torch.float32)


def needed() -> bool:
    """SciPy >= 1.14 has no interp2d."""
    return digit_version(scipy.__version__) >= digit_version('1.14.0')


@contextmanager
def tables_resized_without_interp2d():
    """Within the block, MMPretrain's Swin and BEiT backbones resize their
    tables with :func:`resize_relative_position_bias_table` (where SciPy has
    no interp2d; elsewhere nothing changes); restored on exit."""
    if not needed():
        yield
        return
    modules = (swin_transformer, beit)
    saved = [private_api.table_resizer(m) for m in modules]
    for module in modules:
        private_api.set_table_resizer(module,
                                      resize_relative_position_bias_table)
    try:
        yield
    finally:
        for module, resize in zip(modules, saved):
            private_api.set_table_resizer(module, resize)
