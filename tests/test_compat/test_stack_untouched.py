"""Importing the toolkit changes no other library; each stack fix is needed
here (without it the stack fails) and applies only inside the toolkit's
runs."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmpretrain.models.backbones import swin_transformer
from mmpretrain.models.utils import \
    resize_relative_position_bias_table as mmpretrain_resize

from fastmim_mm.compat import mmcv_ops, scipy_interp2d
from fastmim_mm.engine import read_checkpoint
from ..conftest import DEMO_CONFIG, ROOT

# What a process looks like from the outside: every attribute of every
# module of the stack (and of Runner and CheckpointLoader), torch's
# weights-only allow-list, warnings.showwarning and mmcv's op kernels.
_SNAPSHOT = '''
import importlib, sys, warnings
import torch, torch.serialization
import mmcv.ops, mmdet.models, mmseg.models
import mmengine.runner, mmengine.runner.checkpoint as ckpt
import mmpretrain.utils
mmpretrain.utils.register_all_modules(False)

def snapshot():
    stack = ('torch', 'mmengine', 'mmcv', 'mmpretrain', 'mmdet', 'mmseg')
    state = {}
    for name, module in list(sys.modules.items()):
        if name.split('.')[0] in stack and module is not None:
            state[name] = {k: id(v) for k, v in list(vars(module).items())}
    state['Runner'] = {k: id(v) for k, v in
                       vars(mmengine.runner.Runner).items()}
    state['schemes'] = {k: id(v) for k, v in
                        ckpt.CheckpointLoader._schemes.items()}
    state['safe_globals'] = sorted(
        map(str, torch.serialization.get_safe_globals()))
    state['showwarning'] = id(warnings.showwarning)
    state['mmcv_ops'] = [id(importlib.import_module(m).ext_module)
                         for m in ('mmcv.ops.nms', 'mmcv.ops.roi_align')]
    return state

before = snapshot()
'''


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code],
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          timeout=300)


@pytest.mark.parametrize(
    'how', ['import fastmim_mm', f'Config.fromfile({str(DEMO_CONFIG)!r})'])
def test_import_changes_nothing_in_the_stack(how):
    """Importing the package, or loading a config whose custom_imports do,
    leaves every module of torch, MMEngine, mmcv, MMPretrain, MMDetection and
    MMSegmentation as it was (modules it imports anew aside)."""
    code = _SNAPSHOT + (
        'from mmengine.config import Config\n'
        f'{how}\n'
        "assert 'fastmim_mm' in sys.modules\n"
        'after = snapshot()\n'
        'changed = [\n'
        '    f"{name}.{key}" for name, attrs in before.items()\n'
        '    for key in (attrs if isinstance(attrs, dict) else [None])\n'
        '    if (attrs.get(key) if isinstance(attrs, dict) else attrs)\n'
        '    != (after[name].get(key) if isinstance(after[name], dict)\n'
        '        else after[name])]\n'
        'print(len(before), "modules and objects,", len(changed), '
        '"changed:", changed[:5])\n')
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    count = int(result.stdout.split()[0])
    assert count > 1000, result.stdout  # the stack's modules were compared
    assert ' 0 changed: []' in result.stdout, result.stdout


@pytest.fixture
def mmengine_checkpoint(tmp_path):
    """What a Runner saves besides tensors: its message hub's state."""
    hub = MessageHub.get_instance('compat_test')
    for i in range(3):
        hub.update_scalar('train/loss', np.float64(0.5 - 0.1 * i))
    hub.update_info('iter', 3)
    path = tmp_path / 'epoch_1.pth'
    torch.save(dict(meta=dict(iter=3), message_hub=hub.state_dict()), path)
    return path


def test_mmengine_checkpoints_load_through_read_checkpoint_only(
        mmengine_checkpoint):
    """torch >= 2.6 refuses MMEngine's own checkpoints; read_checkpoint
    allows their types for its own load and leaves torch's allow-list as it
    found it, so torch.load still refuses them."""
    before = set(torch.serialization.get_safe_globals())
    with pytest.raises(Exception, match='HistoryBuffer'):
        torch.load(mmengine_checkpoint)
    loaded = read_checkpoint(str(mmengine_checkpoint))
    hub = loaded['message_hub']['log_scalars']['train/loss']
    np.testing.assert_allclose(hub.data[0], [0.5, 0.4, 0.3])
    assert set(torch.serialization.get_safe_globals()) == before
    with pytest.raises(Exception, match='HistoryBuffer'):
        torch.load(mmengine_checkpoint, weights_only=True)


def test_mmpretrain_table_resize_needs_the_fix_inside_the_block_only():
    assert scipy_interp2d.needed()
    table = torch.randn(49, 2)  # window 4 -> window 7
    with pytest.raises(NotImplementedError, match='interp2d'):
        mmpretrain_resize(7, 13, table, 2)
    original = swin_transformer.resize_relative_position_bias_table
    with scipy_interp2d.tables_resized_without_interp2d():
        assert swin_transformer.resize_relative_position_bias_table(
            7, 13, table, 2).shape == (169, 2)
    assert swin_transformer.resize_relative_position_bias_table is original


def test_mmcv_ops_routing_is_needed_on_gpus_only():
    """mmcv's _ext here has CPU kernels only: a tensor on any other device
    stops (on a GPU: 'device cuda:0 not found'). 'meta' stands in for
    CUDA on this machine; torchvision's kernels take it. Without a CUDA
    device the runner routes nothing."""
    from mmcv.ops import roi_align
    assert mmcv_ops.mmcv_has_cuda_ops() is False
    assert not mmcv_ops.needed() and not mmcv_ops.apply()
    feats = torch.empty(1, 3, 16, 16, device='meta')
    rois = torch.empty(2, 5, device='meta')
    with pytest.raises(RuntimeError, match='device meta not found'):
        roi_align(feats, rois, (7, 7), 1.0, 0, 'avg', True)
    before = mmcv_ops.route_mmcv_ops_to_torchvision(('meta', ))
    try:
        out = roi_align(feats, rois, (7, 7), 1.0, 0, 'avg', True)
    finally:
        mmcv_ops.route_mmcv_ops_to_torchvision(before)
    assert before == () and out.shape == (2, 3, 7, 7)
