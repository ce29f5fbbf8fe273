"""Fixes for the libraries this toolkit runs on, each applied only where
the condition that breaks the stack holds.

- ``torch_load``: torch >= 2.6 loads weights-only by default and refuses
  MMEngine 0.10.7's own checkpoints (``--resume``); the types MMEngine
  saves are added to torch's allow-list.
- ``scipy_interp2d``: SciPy >= 1.14 removed ``interp2d``, with which
  MMPretrain 1.2.0 resizes Swin/BEiT relative-position tables (window 4
  pre-training to window 7 fine-tuning); a ``RectBivariateSpline``
  implementation replaces MMPretrain's.
- ``mmcv_ops``: an mmcv built without CUDA kernels (``tools/setup_env.sh``)
  stops at the first ``nms`` on a GPU; CUDA tensors' ``nms`` and
  ``RoIAlign`` go to torchvision's kernels.

:func:`apply_compat_fixes` applies them; ``fastmim_mm.utils``'
``register_all_modules`` (run by ``import fastmim_mm``, thus by configs'
``custom_imports``) calls it.
"""
from typing import Optional, Tuple

from . import mmcv_ops, scipy_interp2d, torch_load

FIXES = dict(
    torch_load=torch_load, scipy_interp2d=scipy_interp2d, mmcv_ops=mmcv_ops)
_applied: Optional[Tuple[str, ...]] = None


def apply_compat_fixes() -> Tuple[str, ...]:
    """Apply each fix in :data:`FIXES` whose ``needed()`` holds; a second
    call does nothing.

    Returns:
        tuple[str]: The names of the fixes applied (by this call or an
        earlier one).
    """
    global _applied
    if _applied is None:
        _applied = tuple(name for name, fix in FIXES.items() if fix.needed())
        for name in _applied:
            FIXES[name].apply()
    return _applied
