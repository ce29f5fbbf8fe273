"""Each stack fix is needed here (without it the stack fails), is applied
once by ``import fastmim_mm`` (what configs' ``custom_imports`` do), and
only where its condition holds."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmcv.ops import roi_align
from mmengine.logging import MessageHub
from mmpretrain.models.backbones import swin_transformer
from mmpretrain.models.utils import \
    resize_relative_position_bias_table as mmpretrain_resize

from fastmim_mm.compat import (FIXES, apply_compat_fixes, mmcv_ops,
                               scipy_interp2d, torch_load)
from ..conftest import DEMO_CONFIG, ROOT


def test_applied_once_where_needed():
    # This stack: torch 2.14, SciPy >= 1.14, mmcv built without CUDA.
    assert apply_compat_fixes() == tuple(FIXES) == (
        'torch_load', 'scipy_interp2d', 'mmcv_ops')
    assert apply_compat_fixes() == tuple(FIXES)
    ext = sys.modules['mmcv.ops.nms'].ext_module
    assert isinstance(ext, mmcv_ops.TorchvisionKernels)
    assert not isinstance(ext.ext, mmcv_ops.TorchvisionKernels)


def test_config_custom_imports_apply_the_fixes():
    """A fresh process that only loads a config (its custom_imports import
    fastmim_mm) has every fix in place."""
    code = ('import sys, torch\n'
            'from mmengine.config import Config\n'
            'from mmengine.logging import HistoryBuffer\n'
            f'Config.fromfile({str(DEMO_CONFIG)!r})\n'
            'from mmpretrain.models.backbones import swin_transformer as s\n'
            'from fastmim_mm.compat import scipy_interp2d as f\n'
            'print(HistoryBuffer in torch.serialization.get_safe_globals(),\n'
            '      s.resize_relative_position_bias_table is\n'
            '      f.resize_relative_position_bias_table,\n'
            "      type(sys.modules['mmcv.ops.nms'].ext_module).__name__)\n")
    result = subprocess.run([sys.executable, '-c', code],
                            cwd=ROOT,
                            capture_output=True,
                            text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ['True', 'True', 'TorchvisionKernels']


@pytest.fixture
def no_safe_globals():
    """torch's allow-list emptied for one test, then restored."""
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    yield
    torch.serialization.add_safe_globals(saved)


def test_mmengine_checkpoint_needs_the_allow_list(tmp_path, no_safe_globals):
    # What a Runner saves besides tensors: its message hub's state.
    hub = MessageHub.get_instance('compat_test')
    for i in range(3):
        hub.update_scalar('train/loss', np.float64(0.5 - 0.1 * i))
    hub.update_info('iter', 3)
    path = tmp_path / 'epoch_1.pth'
    torch.save(dict(meta=dict(iter=3), message_hub=hub.state_dict()), path)

    assert torch_load.needed()  # torch >= 2.6: weights-only by default
    with pytest.raises(Exception, match='HistoryBuffer'):
        torch.load(path)
    torch_load.apply()
    loaded = torch.load(path)['message_hub']['log_scalars']['train/loss']
    np.testing.assert_allclose(loaded.data[0], [0.5, 0.4, 0.3])


def test_mmpretrain_table_resize_needs_the_fix():
    assert scipy_interp2d.needed()
    table = torch.randn(49, 2)  # window 4 -> window 7
    with pytest.raises(NotImplementedError, match='interp2d'):
        mmpretrain_resize(7, 13, table, 2)
    assert swin_transformer.resize_relative_position_bias_table is \
        scipy_interp2d.resize_relative_position_bias_table
    assert scipy_interp2d.resize_relative_position_bias_table(7, 13, table,
                                                              2).shape == (169,
                                                                           2)


def test_mmcv_ops_without_kernels_need_the_routing():
    """mmcv's _ext here has CPU kernels only: a tensor on any other device
    stops (on a GPU: 'device cuda:0 not found'). 'meta' stands in for
    CUDA on this machine; torchvision's kernels take it."""
    assert mmcv_ops.needed()
    feats = torch.empty(1, 3, 16, 16, device='meta')
    rois = torch.empty(2, 5, device='meta')
    with pytest.raises(RuntimeError, match='device meta not found'):
        roi_align(feats, rois, (7, 7), 1.0, 0, 'avg', True)
    before = mmcv_ops.route_mmcv_ops_to_torchvision(('meta', ))
    try:
        out = roi_align(feats, rois, (7, 7), 1.0, 0, 'avg', True)
    finally:
        mmcv_ops.route_mmcv_ops_to_torchvision(before)
    assert before == ('cuda', ) and out.shape == (2, 3, 7, 7)


def test_read_checkpoint_keeps_the_allow_list(tmp_path):
    """read_checkpoint allows MMEngine's types for its own load and leaves
    torch's allow-list as it found it."""
    from fastmim_mm.engine import read_checkpoint
    path = tmp_path / 'ckpt.pth'
    torch.save(
        dict(
            message_hub=MessageHub.get_instance('keep').state_dict(),
            meta=dict(iter=np.int64(2))), path)
    before = set(torch.serialization.get_safe_globals())
    assert read_checkpoint(str(path))['meta']['iter'] == 2
    assert set(torch.serialization.get_safe_globals()) == before
