import inspect

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

from fastmim_mm.models import FastMIM, FastMIMNeck
from ..conftest import CONFIG_DIR

# The algorithm's default head and the one both pre-training bases name.
HEADS = dict(
    default=inspect.signature(FastMIM).parameters['head'].default,
    **{
        name:
        Config.fromfile(CONFIG_DIR / '_base_' / 'models' /
                        f'{name}.py').model.head
        for name in ('fastmim_vit-base-p16', 'fastmim_swin-base-w4')
    })


def masked_block_mse(pred, target, mask):
    """The formula of the hand-written head MIMHead replaced: per-block mean
    of squared errors in float32, averaged over the masked blocks."""
    per_block = (pred.float() - target.float()).pow(2).mean(dim=-1)
    mask = mask.to(per_block.dtype)
    return (per_block * mask).sum() / mask.sum()


@pytest.mark.parametrize('name', list(HEADS))
def test_head_is_masked_block_mse_on_random_inputs(name):
    head = MODELS.build(HEADS[name])
    gen = torch.Generator().manual_seed(0)
    # (B, L, D) of the ViT and Swin configs, odd sizes, one to all masked.
    cases = [((2, 64, 108), .75), ((3, 16, 432), .75), ((1, 7, 5), .5),
             ((4, 1, 3), 1.), ((2, 9, 9), 1.)]
    for (B, L, D), ratio in cases:
        pred = torch.randn(B, L, D, generator=gen) * 3
        target = torch.rand(B, L, D, generator=gen)
        mask = torch.rand(B, L, generator=gen) < ratio  # as the model's
        mask[0, 0] = True
        loss = head.loss(pred, target, mask)
        assert loss.dtype == torch.float32 and loss.dim() == 0
        torch.testing.assert_close(
            loss, masked_block_mse(pred, target, mask), rtol=1e-6, atol=0)
        torch.testing.assert_close(
            loss, ((pred - target)**2).mean(-1)[mask].mean(),
            rtol=1e-6,
            atol=0)


def test_head_ignores_unmasked_positions():
    head = MODELS.build(HEADS['default'])
    pred, target = torch.randn(2, 6, 10), torch.randn(2, 6, 10)
    mask = torch.tensor([[1, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]]).bool()
    loss = head.loss(pred, target, mask)
    changed = pred.clone()
    changed[~mask] += torch.randn_like(changed[~mask]) * 10
    torch.testing.assert_close(head.loss(changed, target, mask), loss)
    changed[mask] = target[mask] + 3.0
    torch.testing.assert_close(
        head.loss(changed, target, mask), torch.tensor(9.0))


def test_neck_shapes_and_prefix_tokens():
    neck = FastMIMNeck(
        in_channels=48,
        out_channels=108,
        embed_dims=32,
        num_layers=2,
        num_heads=4,
        num_prefix_tokens=1)
    neck.init_weights()
    tokens = torch.randn(2, 1 + 16, 48)  # class token + 4 x 4 patches
    assert neck(tokens).shape == (2, 16, 108)
    # The class token takes part in attention: changing it changes outputs.
    other = tokens.clone()
    other[:, 0] += 1
    assert not torch.allclose(neck(other), neck(tokens))
    fmap = torch.randn(2, 48, 4, 4)
    neck.num_prefix_tokens = 0
    out = neck((fmap, ))
    assert out.shape == (2, 16, 108)
    # Row-major token order: token 5 is row 1, column 1.
    torch.testing.assert_close(out[:, 5],
                               neck(fmap.flatten(2).transpose(1, 2))[:, 5])


def test_neck_without_blocks_is_linear_head():
    neck = FastMIMNeck(in_channels=8, out_channels=4, num_layers=0)
    x = torch.randn(1, 3, 8)
    expected = neck.pred(neck.norm(neck.embed(x)))
    torch.testing.assert_close(neck(x), expected)
    assert len(neck.blocks) == 0
