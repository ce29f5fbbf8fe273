"""FastMIMBEiTViT starts from a plain ViT checkpoint: every ViT tensor is
used, only BEiT's additions are new, and the loaded backbone computes what
the ViT computed (full qkv bias, or q/v biases with the k bias dropped)."""
import logging

import pytest
import torch
from mmengine.logging import MMLogger
from mmpretrain.models import VisionTransformer

from fastmim_mm.models import FastMIMBEiTViT
from ..conftest import load_tool

ARCH = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)


@pytest.fixture
def vit_checkpoint(tmp_path):
    """A ViT classifier's checkpoint (``backbone.`` keys, a head and the
    pooled-feature norm ``ln2`` a segmentation backbone does not use), with
    every tensor random, the qkv biases' key parts included."""
    vit = VisionTransformer(
        arch=ARCH, img_size=64, out_type='avg_featmap', final_norm=False)
    with torch.no_grad():
        for param in vit.parameters():
            param.normal_(0, 0.5)
    state = {f'backbone.{k}': v for k, v in vit.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(10, 32)
    path = tmp_path / 'vit.pth'
    torch.save(dict(state_dict=state), str(path))
    return vit, state, str(path)


class _Lines(logging.Handler):

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _load(path, bias, img_size=64):
    beit = FastMIMBEiTViT(
        arch=ARCH,
        img_size=img_size,
        out_indices=[0, 1, 2],
        out_type='featmap',
        bias=bias,
        init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    logger = MMLogger.get_current_instance()
    handler = _Lines()
    logger.addHandler(handler)
    try:
        beit.init_weights()
    finally:
        logger.removeHandler(handler)
    return beit, handler.lines


@pytest.mark.parametrize('bias', [True, 'qv_bias'])
def test_loaded_backbone_computes_the_vit(vit_checkpoint, bias):
    vit, state, path = vit_checkpoint
    beit, lines = _load(path, bias)
    vit_out = VisionTransformer(
        arch=ARCH,
        img_size=64,
        out_indices=[0, 1, 2],
        out_type='featmap',
        final_norm=False)
    vit_out.load_state_dict(vit.state_dict(), strict=False)
    vit_out.eval()
    beit.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for ours, theirs in zip(beit(x), vit_out(x)):
            assert ours.shape == theirs.shape == (2, 32, 4, 4)
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)

    # Per block, the attention alone: the source's k biases are far from
    # zero, so dropping them ('qv_bias') is exact only because softmax
    # ignores them.
    tokens = torch.randn(2, 17, 32)
    for i in range(ARCH['num_layers']):
        k_bias = state[f'backbone.layers.{i}.attn.qkv.bias'][32:64]
        assert k_bias.abs().max() > 0.5
        with torch.no_grad():
            torch.testing.assert_close(
                beit.layers[i].attn(tokens),
                vit.layers[i].attn(tokens),
                rtol=1e-5,
                atol=1e-5)

    # Every encoder tensor of the checkpoint is in the model as it was.
    own = beit.state_dict()
    used = 0
    for key, value in state.items():
        name = key[len('backbone.'):]
        if not key.startswith('backbone.') or name.startswith('ln2'):
            continue
        if name.endswith('qkv.bias') and bias == 'qv_bias':
            block = name[:-len('qkv.bias')]
            q, _, v = value.chunk(3)
            assert torch.equal(own[block + 'q_bias'], q)
            assert torch.equal(own[block + 'v_bias'], v)
        else:
            assert torch.equal(own[name], value), name
        used += 1
    assert used == 4 + 12 * ARCH['num_layers']
    # The rest is new: zero tables, unit layer scales; one line says so.
    for layer in beit.layers:
        assert not layer.attn.relative_position_bias_table.any()
        assert (layer.gamma_1 == 1).all() and (layer.gamma_2 == 1).all()
    report = [line for line in lines if 'not in the checkpoint' in line]
    assert len(report) == 1
    assert report[0].startswith(
        'FastMIMBEiTViT: new, not in the checkpoint: '
        'attn.relative_position_bias_table 52x2 = 0 in 3 blocks, '
        'gamma_1 32 = 1 in 3 blocks, gamma_2 32 = 1 in 3 blocks')
    assert ('q_bias, v_bias in 3 blocks' in report[0]) == \
        (bias == 'qv_bias')


def test_beit_checkpoint_loads_as_it_is(vit_checkpoint, tmp_path):
    """A checkpoint of this backbone itself (e.g. a trained segmentor's)
    has nothing new: its tables and layer scales load, and nothing is
    reported."""
    _, _, path = vit_checkpoint
    trained, _ = _load(path, True)
    with torch.no_grad():
        for layer in trained.layers:
            layer.attn.relative_position_bias_table.fill_(0.25)
            layer.gamma_1.fill_(0.5)
    own = tmp_path / 'beit.pth'
    torch.save(
        dict(state_dict={
            f'backbone.{k}': v
            for k, v in trained.state_dict().items()
        }), str(own))
    beit, lines = _load(str(own), True)
    assert not any('not in the checkpoint' in line for line in lines)
    assert (beit.layers[1].attn.relative_position_bias_table == 0.25).all()
    assert (beit.layers[2].gamma_1 == 0.5).all()


def test_position_embedding_is_resized(vit_checkpoint):
    """A 64-px checkpoint (4 x 4 patches) into a 128-px backbone: the class
    token's position is kept, the tables are sized for 8 x 8."""
    _, state, path = vit_checkpoint
    beit, _ = _load(path, True, img_size=128)
    assert beit.pos_embed.shape == (1, 1 + 64, 32)
    torch.testing.assert_close(beit.pos_embed[:, 0],
                               state['backbone.pos_embed'][:, 0])
    table = beit.layers[0].attn.relative_position_bias_table
    assert table.shape == ((2 * 8 - 1)**2 + 3, 2) and not table.any()


def test_converted_official_checkpoint_computes_the_official_vit(tmp_path):
    """An official fine-tuned ViT (timm keys, global average pooling) after
    tools/model_converters/fastmim_official_to_mm.py: the loaded backbone's
    last block gives timm's block output."""
    timm_vit = pytest.importorskip('timm.models.vision_transformer')
    ref = timm_vit.VisionTransformer(
        img_size=64,
        patch_size=16,
        embed_dim=32,
        depth=3,
        num_heads=2,
        mlp_ratio=2.,
        num_classes=10,
        global_pool='avg')
    with torch.no_grad():
        for param in ref.parameters():
            param.normal_(0, 0.5)
    ref.eval()
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    torch.save({'model': ref.state_dict()}, str(src))
    converter = load_tool('model_converters/fastmim_official_to_mm.py')
    assert converter.main([str(src), str(dst), '--strict']) == 0

    beit, lines = _load(str(dst), True)
    beit.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        tokens = ref.forward_features(x)[:, 1:]  # no final norm with 'avg'
        expected = tokens.transpose(1, 2).reshape(2, 32, 4, 4)
        torch.testing.assert_close(beit(x)[-1], expected, rtol=1e-5, atol=1e-5)
    assert sum('not in the checkpoint' in line for line in lines) == 1
