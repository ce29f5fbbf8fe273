import copy

import pytest
import torch
from mmpretrain.models.utils import build_2d_sincos_position_embedding
from mmpretrain.models.utils.attention import ShiftWindowMSA
from mmpretrain.registry import MODELS
from torch import nn

from fastmim_mm.models import FastMIM, blockify
from ..conftest import TINY_RESNET, TINY_SWIN, TINY_VIT, FixedMask


def build(cfg, **overrides):
    cfg = copy.deepcopy(cfg)
    for key, value in overrides.items():
        *path, last = key.split('.')
        node = cfg
        for p in path:
            node = node[p]
        node[last] = value
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def test_mask_token_replaces_exactly_the_masked_pixels():
    model = build(TINY_VIT)
    inputs = torch.randn(2, 3, 64, 64)
    mask = model.mask_generator(2, 64, 64)
    out = model.mask_input(inputs, mask)
    pixel = mask.repeat_interleave(16, 1).repeat_interleave(16, 2)
    for c in range(3):
        assert (out[:, c][pixel] == model.mask_token[0, c, 0, 0]).all()
        assert torch.equal(out[:, c][~pixel], inputs[:, c][~pixel])


def vit_with_fixed_mask():
    """A tiny ViT FastMIM whose mask generator returns a fixed mask."""
    model = build(TINY_VIT)
    inputs = torch.randn(2, 3, 64, 64)
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, :3] = True
    mask[1, :, 1:] = True
    model.mask_generator = FixedMask(mask, 16)
    return model, inputs, mask


def test_loss_on_fixed_mask_equals_manual_computation():
    model, inputs, mask = vit_with_fixed_mask()
    loss = model.loss(inputs, None)['loss']

    masked = inputs.clone()
    for b, i, j in mask.nonzero().tolist():
        masked[b, :, i * 16:(i + 1) * 16, j * 16:(j + 1) * 16] = \
            model.mask_token[0]
    tokens = model.backbone(masked)[0]  # B x (1 + 16) x C
    pred = model.neck(tokens)  # B x 16 x 108
    target = blockify(model.target_generator(inputs), 16, 8)  # B x 16 x 108
    sq = ((pred - target)**2).mean(-1)
    torch.testing.assert_close(loss, sq[mask.flatten(1)].mean())

    loss.backward()
    assert model.mask_token.grad is not None
    assert model.mask_token.grad.abs().sum() > 0
    assert model.backbone.pos_embed.grad is None


def test_loss_is_float32_under_mixed_precision():
    """A bf16 prediction gives a float32 loss equal to the float64 formula:
    MIMHead's mse_loss autocasts to float32 (on CPU and CUDA)."""
    model, inputs, mask = vit_with_fixed_mask()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = model.loss(inputs, None)['loss']
        pred = model.predict_blocks(inputs, mask)
    assert pred.dtype == torch.bfloat16 and loss.dtype == torch.float32
    target = model.target_generator.block_targets(inputs, 16)
    sq = ((pred.double() - target.double())**2).mean(-1)
    torch.testing.assert_close(
        loss.double(), sq[mask.flatten(1)].mean(), rtol=1e-6, atol=0)


def test_state_dict_holds_what_a_checkpoint_should():
    model = build(TINY_VIT)
    keys = set(model.state_dict())
    assert {'mask_token', 'backbone.pos_embed', 'backbone.cls_token'} <= keys
    assert not any('kernel' in k or 'gaussian' in k for k in keys)
    assert model.mask_token.shape == (1, 3, 1, 1)
    # Fixed 2-D sin-cos position embedding with a zero class-token slot.
    expected = build_2d_sincos_position_embedding((4, 4), 64, cls_token=True)
    torch.testing.assert_close(model.backbone.pos_embed.data, expected)
    assert not model.backbone.pos_embed.requires_grad


@pytest.mark.parametrize(
    'cfg', [TINY_VIT, TINY_SWIN, TINY_RESNET], ids=['vit', 'swin', 'resnet'])
def test_reconstruct_gives_dense_maps(cfg):
    model = build(cfg).eval()
    inputs = torch.randn(2, 3, 64, 64)
    out = model.reconstruct(inputs)
    assert out['masked_inputs'].shape == (2, 3, 64, 64)
    assert out['target'].shape == out['pred'].shape == (2, 27, 8, 8)
    torch.testing.assert_close(out['target'], model.target_generator(inputs))


def test_build_refuses_grid_mismatch():
    with pytest.raises(ValueError, match='mask_patch_size=32.*16 for ViT'):
        build(
            TINY_VIT, **{
                'mask_generator.mask_patch_size': 32,
                'neck.out_channels': 432
            })


def test_build_refuses_wrong_decoder_output():
    with pytest.raises(ValueError, match='neck.out_channels=432'):
        build(TINY_SWIN, **{'neck.out_channels': 100})


def test_build_refuses_input_not_divisible_by_block():
    with pytest.raises(ValueError, match='mask_patch_size=16'):
        build(TINY_VIT, input_size=72)


def test_build_refuses_window_that_does_not_tile():
    # 96 px, patch 4 -> stages of 24, 12, 6, 3 tokens; window 2 fails at 3.
    with pytest.raises(ValueError, match='window size 2'):
        build(TINY_SWIN, input_size=96)
    # Window 4 does not tile the 6 x 6 map at 96 px either.
    with pytest.raises(ValueError, match='window size 4'):
        build(
            TINY_SWIN,
            input_size=96,
            **{'backbone.stage_cfgs.block_cfgs.window_size': 4})


def test_window_check_leaves_no_hook_behind():
    """The window check hooks the model's ShiftWindowMSA modules only for
    the dry run, also when it fails, and registers no global hook."""
    from torch.nn.modules import module as torch_module
    global_hooks = dict(torch_module._global_forward_pre_hooks)
    model = build(TINY_SWIN)
    with pytest.raises(ValueError, match='window size 2'):
        model.check_input_size((96, 96))
    attns = [m for m in model.modules() if isinstance(m, ShiftWindowMSA)]
    assert len(attns) == 4
    assert not any(m._forward_pre_hooks for m in attns)
    assert torch_module._global_forward_pre_hooks == global_hooks
    model.check_input_size((128, 128))  # 32, 16, 8, 4 tokens: tiled


def test_plain_load_state_dict_refuses_another_architecture():
    """torch's own load_state_dict runs the check too (a public load hook;
    torch's private _load_from_state_dict is not overridden)."""
    assert '_load_from_state_dict' not in vars(FastMIM)
    state = build(TINY_VIT).state_dict()
    deeper = build(TINY_VIT, **{'backbone.arch.num_layers': 3})
    with pytest.raises(
            ValueError,
            match=r'^the checkpoint does not fit.*'
            r'12 tensors are missing'):
        deeper.load_state_dict(state)
    # A checkpoint saved in another model's state dict (prefix) is not
    # checked: the check is for whole FastMIM checkpoints only.
    outer = nn.ModuleDict(dict(inner=deeper))
    result = outer.load_state_dict({
        f'inner.{k}': v
        for k, v in state.items()
    },
                                   strict=False)
    assert len(result.missing_keys) == 12


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    from mmengine.runner import load_checkpoint
    model = build(TINY_VIT)
    path = str(tmp_path / 'pretrain.pth')
    torch.save(dict(state_dict=model.state_dict()), path)

    same = build(TINY_VIT)
    load_checkpoint(same, path, logger='silent')
    torch.testing.assert_close(same.state_dict(), model.state_dict())

    deeper = build(TINY_VIT, **{'backbone.arch.num_layers': 3})
    with pytest.raises(
            ValueError,
            match=r'missing from the checkpoint '
            r'\(first: backbone.layers.2.ln1.weight\)'):
        load_checkpoint(deeper, path, logger='silent')
    wider_decoder = build(TINY_VIT, **{'neck.embed_dims': 64})
    with pytest.raises(
            ValueError,
            match=r'neck.embed.weight: checkpoint '
            r'\(32, 64\) vs model \(64, 64\)'):
        load_checkpoint(wider_decoder, path, logger='silent')
    # A different resolution only resizes the position embedding.
    larger = build(TINY_VIT, input_size=96, **{'backbone.img_size': 96})
    load_checkpoint(larger, path, logger='silent')


def test_build_refuses_block_not_made_of_hog_cells():
    with pytest.raises(
            ValueError,
            match='mask block size 12 is not a '
            'multiple of the target cell size 8'):
        build(
            TINY_VIT, input_size=48, **{'mask_generator.mask_patch_size': 12})


def test_build_refuses_bad_mask_ratio():
    with pytest.raises(ValueError, match=r'mask_ratio must lie in \(0, 1\)'):
        build(TINY_VIT, **{'mask_generator.mask_ratio': 1.5})
