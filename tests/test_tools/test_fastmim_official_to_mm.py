"""tools/model_converters/fastmim_official_to_mm.py against independent
references: timm's ViT and Swin (whose key names are the official ones),
a hand-written FastMIM loss in the official layout, and an inverse mapping
of MMPretrain's Swin written here."""
import argparse
import copy
import os
import subprocess
import sys
from functools import partial

import pytest
import torch
from mmpretrain.registry import MODELS
from torch import nn

from ..conftest import ROOT, TINY_SWIN, TINY_VIT, FixedMask, load_tool

timm = pytest.importorskip('timm')
from timm.models.swin_transformer import SwinTransformer as TimmSwin  # noqa
from timm.models.vision_transformer import Block  # noqa: E402
from timm.models.vision_transformer import VisionTransformer as TimmViT  # noqa

SCRIPT = ROOT / 'tools' / 'model_converters' / 'fastmim_official_to_mm.py'

VIT_DIMS = dict(
    img_size=64,
    patch_size=16,
    embed_dim=64,
    depth=2,
    num_heads=2,
    mlp_ratio=2.)
MM_VIT_ARCH = dict(
    embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=128)
SWIN_DIMS = dict(
    img_size=64,
    patch_size=4,
    window_size=2,
    embed_dim=32,
    depths=(2, 2, 2, 2),
    num_heads=(1, 2, 4, 8))
MM_SWIN = dict(
    type='SwinTransformer',
    arch=dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8]),
    img_size=64,
    stage_cfgs=dict(block_cfgs=dict(window_size=2)),
    drop_path_rate=0.,
    out_indices=(3, ))


class NotAllowed:
    """A type weights-only loading must refuse."""


@pytest.fixture(scope='module')
def conv():
    return load_tool('model_converters/fastmim_official_to_mm.py')


def randomize(module):
    """Random weights everywhere, norms included (so that a wrong channel
    order of a norm cannot go unnoticed)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            is_norm_weight = name.endswith('weight') and p.dim() == 1
            p.copy_(1 + 0.2 * noise if is_norm_weight else 0.1 * noise)
    module.eval()  # (some MMPretrain backbones' train() returns None)
    return module


def convert(conv, src, dst, *options):
    return conv.main([str(src), str(dst), *options])


def load_out(dst):
    return torch.load(str(dst), map_location='cpu', weights_only=True)


def strip(state, prefix):
    return {
        k[len(prefix):]: v
        for k, v in state.items() if k.startswith(prefix)
    }


def build(cfg):
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    model.eval()
    return model


def blocks_of(dense, mask_patch_size, pool):
    """B x C x H x W map of pool-pixel cells -> B x L x (C * n^2), n =
    mask_patch_size / pool, channel-major per block."""
    B, C, H, W = dense.shape
    n = mask_patch_size // pool
    rows = []
    for i in range(H // n):
        for j in range(W // n):
            patch = dense[:, :, i * n:(i + 1) * n, j * n:(j + 1) * n]
            rows.append(patch.reshape(B, -1))  # index c*n*n + row*n + col
    return torch.stack(rows, dim=1)


def mask_pixels(inputs, mask, mask_patch_size, token):
    out = inputs.clone()
    for b, i, j in mask.nonzero().tolist():
        p = mask_patch_size
        out[b, :, i * p:(i + 1) * p, j * p:(j + 1) * p] = \
            token.reshape(3, 1, 1)
    return out


def official_decoder(in_dims, out_dims, embed=32, depth=1, heads=2):
    dec = nn.ModuleDict(
        dict(
            decoder_embed=nn.Linear(in_dims, embed),
            decoder_blocks=nn.ModuleList([
                Block(
                    embed,
                    heads,
                    mlp_ratio=4.,
                    qkv_bias=True,
                    norm_layer=partial(nn.LayerNorm, eps=1e-6))
                for _ in range(depth)
            ]),
            decoder_norm=nn.LayerNorm(embed, eps=1e-6),
            decoder_pred=nn.Linear(embed, out_dims)))
    return randomize(dec)


def run_decoder(dec, tokens):
    x = dec['decoder_embed'](tokens)
    for blk in dec['decoder_blocks']:
        x = blk(x)
    return dec['decoder_pred'](dec['decoder_norm'](x))


def hand_loss(pred, target, mask):
    per_block = ((pred - target)**2).mean(-1)  # B x L
    return per_block[mask.flatten(1)].mean()


# --------------------------------------------------------------------- ViT


def test_vit_encoder_matches_timm(conv, tmp_path):
    ref = randomize(TimmViT(num_classes=0, **VIT_DIMS))
    torch.save({'model': ref.state_dict()}, tmp_path / 'vit.pth')
    assert convert(conv, tmp_path / 'vit.pth', tmp_path / 'mm.pth',
                   '--strict') == 0
    ckpt = load_out(tmp_path / 'mm.pth')
    assert set(ckpt['state_dict']) >= {
        'backbone.patch_embed.projection.weight', 'backbone.cls_token',
        'backbone.pos_embed', 'backbone.layers.1.ffn.layers.0.0.weight',
        'backbone.ln1.weight'
    }

    mm = build(
        dict(type='FastMIMViT', arch=MM_VIT_ARCH, img_size=64, patch_size=16))
    mm.load_state_dict(strip(ckpt['state_dict'], 'backbone.'), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = ref.forward_features(x)  # final-normed tokens
        out = mm(x)[0]
    assert out.shape == (2, 17, 64)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('pool', ['avg', 'token'])
def test_vit_classifier_matches_timm(conv, tmp_path, pool):
    ref = randomize(TimmViT(num_classes=10, global_pool=pool, **VIT_DIMS))
    keys = set(ref.state_dict())
    # avg: MAE-style fc_norm after pooling, no final norm; token: the reverse
    assert ('fc_norm.weight' in keys) == (pool == 'avg')
    assert ('norm.weight' in keys) == (pool == 'token')
    torch.save({'model': ref.state_dict()}, tmp_path / 'ft.pth')
    assert convert(conv, tmp_path / 'ft.pth', tmp_path / 'mm.pth',
                   '--strict') == 0
    ckpt = load_out(tmp_path / 'mm.pth')
    meta = ckpt['meta']
    assert meta['kind'] == 'finetune' and meta['num_classes'] == 10

    out_type = 'avg_featmap' if pool == 'avg' else 'cls_token'
    assert meta['out_type'] == out_type
    assert meta['final_norm'] == (pool == 'token')
    clf = build(
        dict(
            type='ImageClassifier',
            backbone=dict(
                type='VisionTransformer',
                arch=MM_VIT_ARCH,
                img_size=64,
                patch_size=16,
                out_type=out_type,
                final_norm=meta['final_norm']),
            neck=None,
            head=dict(type='LinearClsHead', num_classes=10, in_channels=64)))
    clf.load_state_dict(ckpt['state_dict'], strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            clf(x, mode='tensor'), ref(x), atol=1e-5, rtol=1e-5)


def test_vit_pretraining_loss_matches_official_layout(conv, tmp_path):
    encoder = randomize(TimmViT(num_classes=0, **VIT_DIMS))
    decoder = official_decoder(64, 108)
    mask_token = torch.randn(1, 1, 3)  # stored in another shape
    state = dict(encoder.state_dict())
    state.update(decoder.state_dict())
    state['mask_token'] = mask_token
    torch.save({'model': state, 'epoch': 7}, tmp_path / 'pre.pth')
    assert convert(conv, tmp_path / 'pre.pth', tmp_path / 'mm.pth',
                   '--strict') == 0
    ckpt = load_out(tmp_path / 'mm.pth')
    assert ckpt['meta']['kind'] == 'pretrain'
    assert ckpt['meta']['epoch'] == 7
    assert ckpt['state_dict']['mask_token'].shape == (1, 3, 1, 1)

    model = build(TINY_VIT)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    inputs = torch.randn(2, 3, 64, 64)
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, :3] = True
    mask[1, :, 1:] = True
    model.mask_generator = FixedMask(mask, 16)
    with torch.no_grad():
        loss = model.loss(inputs, None)['loss']

        masked = mask_pixels(inputs, mask, 16, mask_token)
        tokens = encoder.forward_features(masked)  # B x (1 + 16) x 64
        pred = run_decoder(decoder, tokens)[:, 1:]  # drop the class token
        hog = MODELS.build(dict(type='FastMIMHOGGenerator'))(inputs)
        target = blocks_of(hog, 16, 8)  # B x 16 x 108
        expected = hand_loss(pred, target, mask)
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)


# -------------------------------------------------------------------- Swin


def mm_swin_to_original(state):
    """MMPretrain SwinTransformer keys -> original Swin keys, written
    independently of the converter (explicit channel permutation)."""
    out = {}
    for key, value in state.items():
        new = key.replace('stages.', 'layers.').replace(
            'patch_embed.projection',
            'patch_embed.proj').replace('attn.w_msa.', 'attn.').replace(
                'ffn.layers.0.0', 'mlp.fc1').replace('ffn.layers.1', 'mlp.fc2')
        if new.startswith('norm3.'):
            new = 'norm.' + new[len('norm3.'):]
        if '.downsample.' in key:
            C = value.shape[-1] // 4
            # original channel g*C + c, g over (row, col) = (0,0), (1,0),
            # (0,1), (1,1); MMPretrain (Unfold) channel c*4 + row*2 + col
            perm = torch.empty(4 * C, dtype=torch.long)
            for g, (row, col) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
                for c in range(C):
                    perm[g * C + c] = c * 4 + row * 2 + col
            value = value[..., perm]
        out[new] = value.clone()
    return out


def timm_swin_to_original(model):
    """timm Swin (downsample at the start of the next stage) -> original
    layout (downsample at the end of a stage; same channel order), with the
    buffers the original saves."""
    out = {}
    for key, value in model.state_dict().items():
        parts = key.split('.')
        if len(parts) > 2 and parts[0] == 'layers' and \
                parts[2] == 'downsample':
            parts[1] = str(int(parts[1]) - 1)
        key = '.'.join(parts)
        if key.startswith('head.fc.'):
            key = 'head.' + key[len('head.fc.'):]
        out[key] = value
    for i, layer in enumerate(model.layers):
        for j, blk in enumerate(layer.blocks):
            out[f'layers.{i}.blocks.{j}.attn.relative_position_index'] = \
                blk.attn.relative_position_index.clone()
            if blk.attn_mask is not None:
                out[f'layers.{i}.blocks.{j}.attn_mask'] = blk.attn_mask
    return out


def test_swin_round_trip_from_mmpretrain(conv, tmp_path):
    mm = randomize(build(MM_SWIN))
    original = mm_swin_to_original(mm.state_dict())
    assert 'layers.0.downsample.reduction.weight' in original
    torch.save(original, tmp_path / 'swin.pth')
    assert convert(conv, tmp_path / 'swin.pth', tmp_path / 'mm.pth',
                   '--strict') == 0
    back = strip(load_out(tmp_path / 'mm.pth')['state_dict'], 'backbone.')
    expected = mm.state_dict()
    assert set(back) == set(expected)
    for key in expected:
        assert back[key].dtype == expected[key].dtype, key
        assert torch.equal(back[key], expected[key]), key

    reloaded = build(MM_SWIN)
    reloaded.load_state_dict(back, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x)[0], mm(x)[0], atol=0, rtol=0)


def test_swin_classifier_matches_timm(conv, tmp_path, capsys):
    ref = randomize(TimmSwin(num_classes=10, **SWIN_DIMS))
    original = timm_swin_to_original(ref)
    torch.save({'model': original}, tmp_path / 'swin.pth')
    assert convert(conv, tmp_path / 'swin.pth', tmp_path / 'mm.pth',
                   '--strict') == 0
    num_buffers = sum(
        k.endswith(('relative_position_index', 'attn_mask')) for k in original)
    assert f'dropped {num_buffers} relative_position_index/attn_mask' in \
        capsys.readouterr().out
    ckpt = load_out(tmp_path / 'mm.pth')
    assert ckpt['meta']['depths'] == [2, 2, 2, 2]
    assert ckpt['meta']['num_heads'] == [1, 2, 4, 8]
    assert ckpt['meta']['window_size'] == 2
    clf = build(
        dict(
            type='ImageClassifier',
            backbone=MM_SWIN,
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=10, in_channels=256)))
    clf.load_state_dict(ckpt['state_dict'], strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = clf.backbone(x)[0]  # B x C x h x w
        expected = ref.forward_features(x).permute(0, 3, 1, 2)  # NHWC
        torch.testing.assert_close(feats, expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            clf(x, mode='tensor'), ref(x), atol=1e-5, rtol=1e-5)


def test_swin_pretraining_loss_matches_official_layout(conv, tmp_path):
    encoder = randomize(TimmSwin(num_classes=0, **SWIN_DIMS))
    decoder = official_decoder(256, 432)
    mask_token = torch.randn(3)
    state = {
        'encoder.' + k: v
        for k, v in timm_swin_to_original(encoder).items()
    }
    state.update(decoder.state_dict())
    state['mask_token'] = mask_token  # stored without the encoder. prefix
    torch.save({'model': state}, tmp_path / 'pre.pth')
    assert convert(conv, tmp_path / 'pre.pth', tmp_path / 'mm.pth',
                   '--strict') == 0
    ckpt = load_out(tmp_path / 'mm.pth')

    cfg = copy.deepcopy(TINY_SWIN)
    cfg['backbone'] = dict(MM_SWIN)
    model = build(cfg)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    inputs = torch.randn(2, 3, 64, 64)
    mask = torch.tensor([[[True, False], [True, True]],
                         [[False, True], [False, False]]])
    model.mask_generator = FixedMask(mask, 32)
    with torch.no_grad():
        loss = model.loss(inputs, None)['loss']

        masked = mask_pixels(inputs, mask, 32, mask_token)
        feats = encoder.forward_features(masked)  # B x 2 x 2 x 256
        pred = run_decoder(decoder, feats.flatten(1, 2))  # B x 4 x 432
        hog = MODELS.build(dict(type='FastMIMHOGGenerator'))(inputs)
        expected = hand_loss(pred, blocks_of(hog, 32, 8), mask)
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)


def test_reorder_patch_merging_matches_unfold(conv):
    C = 3
    x = torch.randn(1, 4, 4, C)  # B x H x W x C
    original = torch.cat([
        x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]
    ], -1)
    unfolded = nn.Unfold(2, stride=2)(x.permute(0, 3, 1, 2))  # B x 4C x L
    unfolded = unfolded.transpose(1, 2).reshape(1, 2, 2, 4 * C)
    w = torch.randn(5, 4 * C)
    torch.testing.assert_close(original @ w.t(),
                               unfolded @ conv.reorder_patch_merging(w).t())
    for window in (2, 4, 7):
        from mmpretrain.models.utils.attention import WindowMSA
        ref = WindowMSA(8, (window, window), 2).relative_position_index
        assert torch.equal(conv.relative_position_index(window), ref)


# -------------------------------------------------------------- containers


@pytest.fixture
def vit_state():
    torch.manual_seed(0)
    sd = dict(randomize(TimmViT(num_classes=0, **VIT_DIMS)).state_dict())
    sd.update(official_decoder(64, 108).state_dict())
    sd['mask_token'] = torch.randn(1, 3, 1, 1)
    return sd


def test_full_container_and_bare_state_dict(conv, tmp_path, vit_state, capsys):
    container = {
        'model':
        vit_state,
        'optimizer': {
            'state': {},
            'param_groups': [{
                'lr': 1e-3
            }]
        },
        'scaler': {
            'scale': 65536.0
        },
        'epoch':
        3,
        'args':
        argparse.Namespace(
            lr=1e-3, model='fastmim_vit_base', input_size=(128, 128)),
    }
    torch.save(container, tmp_path / 'full.pth')
    torch.save(vit_state, tmp_path / 'bare.pth')
    assert convert(conv, tmp_path / 'full.pth', tmp_path / 'a.pth') == 0
    assert convert(conv, tmp_path / 'bare.pth', tmp_path / 'b.pth') == 0
    out = capsys.readouterr().out
    assert 'unmapped' not in out
    assert f'converted {len(vit_state)} source tensors into ' \
        f'{len(vit_state)} tensors' in out

    a, b = load_out(tmp_path / 'a.pth'), load_out(tmp_path / 'b.pth')
    assert a['meta']['epoch'] == 3
    assert a['meta']['official_args'] == {
        'lr': 1e-3,
        'model': 'fastmim_vit_base',
        'input_size': [128, 128]
    }
    assert set(a['state_dict']) == set(b['state_dict'])
    for k, v in a['state_dict'].items():
        assert type(v) is torch.Tensor and torch.equal(v, b['state_dict'][k])
    # Loads strictly into the FastMIM model; no temporary files are left.
    build(TINY_VIT).load_state_dict(a['state_dict'], strict=True)
    assert sorted(
        os.listdir(tmp_path)) == ['a.pth', 'b.pth', 'bare.pth', 'full.pth']


def test_output_loads_weights_only_in_a_fresh_process(tmp_path, vit_state):
    """The CLI, and the result read by plain torch without fastmim_mm."""
    container = {
        'model': vit_state,
        'epoch': 1,
        'args': argparse.Namespace(lr=1e-3)
    }
    torch.save(container, tmp_path / 'full.pth')
    dst = tmp_path / 'out' / 'mm.pth'  # the folder is created
    code = ('import runpy, sys, torch\n'
            f'sys.argv = ["x", {str(tmp_path / "full.pth")!r}, {str(dst)!r}]\n'
            'try:\n'
            f'    runpy.run_path({str(SCRIPT)!r}, run_name="__main__")\n'
            'except SystemExit as e:\n'
            '    assert e.code == 0, e.code\n'
            f'ckpt = torch.load({str(dst)!r}, weights_only=True)\n'
            'print(len(ckpt["state_dict"]), ckpt["meta"]["kind"])\n')
    res = subprocess.run([sys.executable, '-c', code],
                         capture_output=True,
                         text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith(f'{len(vit_state)} pretrain')


def test_unknown_keys_are_reported_and_strict_fails(conv, tmp_path, vit_state,
                                                    capsys):
    vit_state['decoder_pos_embed'] = torch.zeros(1, 17, 32)
    vit_state['blocks.0.ls1.gamma'] = torch.ones(64)
    vit_state['mask_token'] = torch.zeros(1, 1, 64)  # not 3 elements
    torch.save({'model': vit_state}, tmp_path / 'odd.pth')
    dst = tmp_path / 'mm.pth'
    assert convert(conv, tmp_path / 'odd.pth', dst) == 0
    out = capsys.readouterr().out
    for key in ('decoder_pos_embed', 'blocks.0.ls1.gamma', 'mask_token'):
        assert f'unmapped: {key} ' in out
    assert 'could not map 3 source keys' in out
    assert 'mask_token' not in load_out(dst)['state_dict']

    dst.write_bytes(b'previous')
    assert convert(conv, tmp_path / 'odd.pth', dst, '--strict') == 1
    assert 'not written' in capsys.readouterr().err
    assert dst.read_bytes() == b'previous'


def test_kind_override_keeps_only_the_encoder(conv, tmp_path, vit_state,
                                              capsys):
    torch.save(vit_state, tmp_path / 'pre.pth')
    assert convert(conv, tmp_path / 'pre.pth', tmp_path / 'enc.pth', '--kind',
                   'finetune') == 0
    out = capsys.readouterr().out
    assert 'unmapped: decoder_embed.weight' in out
    assert 'unmapped: mask_token' in out
    keys = load_out(tmp_path / 'enc.pth')['state_dict']
    assert all(k.startswith('backbone.') for k in keys)


def test_unreadable_inputs_name_the_file(conv, tmp_path, vit_state, capsys):
    torch.save(vit_state, tmp_path / 'pre.pth')
    assert convert(conv, tmp_path / 'pre.pth', tmp_path / 'a.pth') == 0
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint at all')
    assert convert(conv, garbage, tmp_path / 'x.pth') == 2
    assert str(garbage) in capsys.readouterr().err

    assert convert(conv, tmp_path / 'missing.pth', tmp_path / 'x.pth') == 2
    assert 'missing.pth: no such file' in capsys.readouterr().err

    unsafe = tmp_path / 'unsafe.pth'
    torch.save({'model': vit_state, 'args': NotAllowed()}, unsafe)
    assert convert(conv, unsafe, tmp_path / 'x.pth') == 2
    err = capsys.readouterr().err
    assert str(unsafe) in err and 'weights-only' in err

    no_model = tmp_path / 'nomodel.pth'
    torch.save({'epoch': 1}, no_model)
    assert convert(conv, no_model, tmp_path / 'x.pth') == 2
    assert 'holds no tensors' in capsys.readouterr().err

    neither = tmp_path / 'neither.pth'
    torch.save({'conv.weight': torch.zeros(1)}, neither)
    assert convert(conv, neither, tmp_path / 'x.pth') == 2
    assert '--arch' in capsys.readouterr().err

    assert convert(conv, tmp_path / 'a.pth', tmp_path / 'x.pth') == 2
    assert 'already in the MMPretrain layout' in capsys.readouterr().err
    assert not (tmp_path / 'x.pth').exists()


def test_failed_write_leaves_no_partial_file(conv, tmp_path, vit_state,
                                             monkeypatch):
    torch.save(vit_state, tmp_path / 'pre.pth')
    dst = tmp_path / 'mm.pth'
    dst.write_bytes(b'previous')

    def broken_save(obj, f, *args, **kwargs):
        f.write(b'half a checkpoint')
        raise OSError('disk full')

    monkeypatch.setattr(conv.torch, 'save', broken_save)
    with pytest.raises(OSError, match='disk full'):
        convert(conv, tmp_path / 'pre.pth', dst)
    assert dst.read_bytes() == b'previous'
    assert sorted(os.listdir(tmp_path)) == ['mm.pth', 'pre.pth']


def test_detection(conv):
    assert conv.detect_arch({'blocks.0.norm1.weight': 0}) == 'vit'
    assert conv.detect_arch({'encoder.layers.0.blocks.0.norm1.weight':
                             0}) == 'swin'
    assert conv.detect_arch({'module.layers.1.blocks.0.attn.qkv.weight':
                             0}) == 'swin'
    assert conv.detect_kind({
        'blocks.0.norm1.weight': 0,
        'head.weight': 0
    }) == 'finetune'
    for key in ('decoder_embed.weight', 'mask_token', 'encoder.norm.weight'):
        assert conv.detect_kind({key: 0}) == 'pretrain'


def test_prefixed_keys_convert_and_report_their_source_names(
        conv, tmp_path, vit_state, capsys):
    """DDP ``module.`` prefixes are dropped; messages keep the full name."""
    torch.save(vit_state, tmp_path / 'plain.pth')
    prefixed = {'module.' + k: v for k, v in vit_state.items()}
    prefixed['module.encoder.mask_token'] = prefixed.pop('module.mask_token')
    prefixed['module.decoder_pos_embed'] = torch.zeros(1, 17, 32)
    torch.save({'model': prefixed}, tmp_path / 'ddp.pth')
    assert convert(conv, tmp_path / 'plain.pth', tmp_path / 'a.pth') == 0
    assert convert(conv, tmp_path / 'ddp.pth', tmp_path / 'b.pth') == 0
    assert 'unmapped: module.decoder_pos_embed (1, 17, 32)' in \
        capsys.readouterr().out
    a = load_out(tmp_path / 'a.pth')['state_dict']
    b = load_out(tmp_path / 'b.pth')['state_dict']
    assert set(a) == set(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
