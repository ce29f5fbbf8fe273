import torch

from fastmim_mm.models import FastMIMHead, FastMIMNeck


def test_head_ignores_unmasked_positions():
    head = FastMIMHead()
    pred, target = torch.randn(2, 6, 10), torch.randn(2, 6, 10)
    mask = torch.tensor([[1, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]]).bool()
    loss = head.loss(pred, target, mask)
    expected = ((pred - target)**2)[mask].mean()
    torch.testing.assert_close(loss, expected)

    changed = pred.clone()
    changed[~mask] += torch.randn_like(changed[~mask]) * 10
    torch.testing.assert_close(head.loss(changed, target, mask), loss)
    changed[mask] = target[mask] + 3.0
    torch.testing.assert_close(
        head.loss(changed, target, mask), torch.tensor(9.0))


def test_neck_shapes_and_prefix_tokens():
    neck = FastMIMNeck(in_channels=48, out_channels=108, embed_dims=32,
                       num_layers=2, num_heads=4, num_prefix_tokens=1)
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
    torch.testing.assert_close(
        out[:, 5], neck(fmap.flatten(2).transpose(1, 2))[:, 5])


def test_neck_without_blocks_is_linear_head():
    neck = FastMIMNeck(in_channels=8, out_channels=4, num_layers=0)
    x = torch.randn(1, 3, 8)
    expected = neck.pred(neck.norm(neck.embed(x)))
    torch.testing.assert_close(neck(x), expected)
    assert len(neck.blocks) == 0
