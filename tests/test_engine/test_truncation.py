"""A truncated-encoder FastMIM checkpoint loads into the full backbone."""
import copy

import torch
from mmpretrain.registry import MODELS

from ..conftest import TINY_VIT


def test_truncated_checkpoint_loads_into_full_depth_vit(tmp_path):
    cfg = copy.deepcopy(TINY_VIT)
    cfg['backbone']['arch'] = dict(
        embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=128)
    pretrain = MODELS.build(cfg)
    pretrain.init_weights()
    ckpt = str(tmp_path / 'truncated.pth')
    torch.save(dict(state_dict=pretrain.state_dict()), ckpt)

    full = MODELS.build(
        dict(
            type='VisionTransformer',
            arch=dict(
                embed_dims=64,
                num_layers=4,
                num_heads=2,
                feedforward_channels=128),
            img_size=64,
            patch_size=16,
            init_cfg=dict(
                type='Pretrained', checkpoint=ckpt, prefix='backbone.')))
    full.init_weights()

    source = pretrain.backbone.state_dict()
    loaded = full.state_dict()
    for key, value in source.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    assert 'layers.1.attn.qkv.weight' in source
    assert 'layers.2.attn.qkv.weight' not in source
    # Blocks beyond the pre-trained depth start fresh, not as copies.
    for key in ('layers.2.attn.qkv.weight', 'layers.3.ffn.layers.1.weight'):
        src_key = 'layers.1.' + key.split('.', 2)[2]
        assert torch.isfinite(loaded[key]).all()
        assert not torch.allclose(loaded[key], source[src_key])
    # The fixed sin-cos position embedding came with the checkpoint.
    torch.testing.assert_close(loaded['pos_embed'],
                               pretrain.backbone.pos_embed.data)
