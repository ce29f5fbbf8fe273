import copy

import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS

from fastmim_mm.compat.scipy_interp2d import (
    _source_offsets, resize_relative_position_bias_table)
from fastmim_mm.engine import CheckedLoading
from ..conftest import TINY_SWIN


def test_resize_interpolates_and_clamps_like_interp2d():
    src = _source_offsets(7, 13)  # window 4 -> window 7
    np.testing.assert_allclose(src[4:], [1.0, 2.5, 4.75], atol=1e-5)
    # A function linear in the source offsets is reproduced exactly by the
    # bicubic spline inside the source range; outside it the nearest
    # boundary value is used (interp2d's default extrapolation).
    a, b = 0.3, -0.7
    table = torch.tensor([[a * x + b * y for x in src] for y in src])
    table = torch.stack([table.reshape(-1), 2 * table.reshape(-1)], dim=1)
    out = resize_relative_position_bias_table(7, 13, table, 2)
    assert out.shape == (169, 2)
    dst = np.clip(np.arange(-6, 7), src[0], src[-1])
    expected = torch.tensor([[a * x + b * y for x in dst] for y in dst])
    torch.testing.assert_close(
        out[:, 0], expected.reshape(-1).float(), atol=1e-4, rtol=0)
    torch.testing.assert_close(out[:, 1], 2 * out[:, 0])


def test_window4_checkpoint_loads_into_window7_swin(tmp_path):
    cfg = copy.deepcopy(TINY_SWIN)
    cfg['backbone']['stage_cfgs'] = dict(block_cfgs=dict(window_size=4))
    cfg['input_size'] = 128
    cfg['backbone']['img_size'] = 128
    pretrain = MODELS.build(cfg)
    pretrain.init_weights()
    path = str(tmp_path / 'fastmim_swin_w4.pth')
    torch.save(dict(state_dict=pretrain.state_dict()), path)

    finetune = MODELS.build(
        dict(
            type='SwinTransformer',
            arch=dict(
                embed_dims=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8]),
            img_size=224,
            stage_cfgs=dict(block_cfgs=dict(window_size=7)),
            init_cfg=dict(
                type='Pretrained', checkpoint=path, prefix='backbone.')))
    fresh = finetune.stages[1].blocks[0].attn.w_msa \
        .relative_position_bias_table.detach().clone()
    with pytest.raises(NotImplementedError, match='interp2d'):
        finetune.init_weights()  # MMPretrain alone, on SciPy >= 1.14
    with CheckedLoading():  # what FastMIMRunner opens around its loads
        finetune.init_weights()

    key = 'stages.1.blocks.0.attn.w_msa.relative_position_bias_table'
    source = pretrain.backbone.state_dict()[key]  # 7*7 x 2 heads
    loaded = finetune.state_dict()[key]  # 13*13 x 2 heads
    assert source.shape == (49, 2) and loaded.shape == (169, 2)
    torch.testing.assert_close(
        loaded, resize_relative_position_bias_table(7, 13, source, 2))
    assert not torch.allclose(loaded, fresh)
    # The centre offset (0, 0) keeps its pre-trained value.
    torch.testing.assert_close(loaded[84], source[24])
    out = finetune(torch.randn(1, 3, 224, 224))
    assert torch.isfinite(out[-1]).all()
