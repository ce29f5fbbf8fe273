"""Convert an official FastMIM checkpoint to this toolkit's layout.

The official FastMIM code (ggjy/FastMIM.pytorch) saves timm-style ViT keys
(``blocks.N.norm1``, ``blocks.N.mlp.fc1``, ...) and original Swin keys
(``layers.N.blocks.M.attn.qkv``, ``layers.N.downsample.reduction``, ...).
This script renames them to MMPretrain's module names and reorders what has
to be reordered, so that:

* a **pre-training** checkpoint (it has ``decoder_*`` tensors and/or
  ``mask_token``, Swin encoders under ``encoder.``) loads with
  ``strict=True`` into this toolkit's :class:`FastMIM` algorithm
  (``backbone.*``, ``neck.*``, ``mask_token``), i.e. it can be used to
  resume or inspect pre-training and with ``init_cfg=dict(type='Pretrained',
  prefix='backbone.')`` to start fine-tuning.

  - ViT: ``backbone=dict(type='FastMIMViT', arch=dict(embed_dims, num_layers,
    num_heads, feedforward_channels), patch_size=16, out_type='raw')`` and
    ``neck=dict(type='FastMIMNeck', num_prefix_tokens=1, ...)``. The number
    of attention heads is not stored in a checkpoint; the official ViT-B
    pre-training uses 6 (``configs/_base_/models/fastmim_vit-base-p16.py``).
  - Swin: ``backbone=dict(type='SwinTransformer', out_indices=(3, ), ...)``
    (the final norm becomes ``norm3``) and ``neck=dict(type='FastMIMNeck',
    num_prefix_tokens=0, ...)``.

* a **fine-tuned** classifier loads with ``strict=True`` into an MMPretrain
  ``ImageClassifier`` with a ``LinearClsHead`` (``head.weight`` ->
  ``head.fc.weight``):

  - ViT with global average pooling (MAE-style ``fc_norm``)::

        model = dict(
            type='ImageClassifier',
            backbone=dict(type='VisionTransformer', arch=..., patch_size=16,
                          out_type='avg_featmap', final_norm=False),
            neck=None,
            head=dict(type='LinearClsHead', num_classes=..., in_channels=C))

    ``fc_norm`` becomes the backbone's ``ln2`` (applied after pooling). If
    the checkpoint also has a final ``norm`` it becomes ``ln1``; then set
    ``final_norm=True``.
  - ViT with a class-token classifier (``norm``, no ``fc_norm``): the same
    with ``out_type='cls_token', final_norm=True`` (``norm`` -> ``ln1``).
  - Swin: ``backbone=dict(type='SwinTransformer', out_indices=(3, ), ...)``,
    ``neck=dict(type='GlobalAveragePooling')``,
    ``head=dict(type='LinearClsHead', in_channels=C_last, ...)``.

Swin details: MMPretrain's ``PatchMerging`` gathers the 2x2 neighbours with
``nn.Unfold`` (input channel ``c * 4 + row * 2 + col``), the original
concatenates them as (row, col) = (0, 0), (1, 0), (0, 1), (1, 1) (channel
``group * C + c``), so the reduction weight's input channels and the
merge norm's weight and bias are permuted. ``relative_position_index`` and
``attn_mask`` buffers of the source are dropped; MMPretrain keeps
``relative_position_index`` in its state dict, so it is recomputed from the
window size (read from the bias table).

The mask token is reshaped to 1 x 3 x 1 x 1 when it has 3 elements; any
other size is reported as unmapped.

Source keys that fit no rule are listed in the summary (the conversion
fails with ``--strict``). The output is ``{'state_dict': ..., 'meta': ...}``
of plain tensors and Python values, so ``torch.load(..., weights_only=True)``
reads it; it is written to a temporary file first and then renamed.

Example::

    python tools/model_converters/fastmim_official_to_mm.py \\
        fastmim_vit_base_400e.pth work_dirs/fastmim_vit-base_mm.pth

Args:
    src (str): Official checkpoint, ``{'model': state_dict, ...}`` or a bare
        state dict.
    dst (str): Output file.
    --arch {vit,swin}: Override the detected architecture.
    --kind {pretrain,finetune}: Override the detected checkpoint kind.
    --strict: Exit with status 1 (and write nothing) if any source key
        cannot be mapped.
"""
import argparse
import io
import os.path as osp
import re
import sys
from collections import OrderedDict

import torch

from fastmim_mm.engine import (AtomicLocalBackend, CheckpointFileError,
                               read_checkpoint)

VIT_BLOCK_RULES = [  # official suffix in blocks.N -> MMPretrain suffix
    ('norm1.', 'ln1.'),
    ('attn.qkv.', 'attn.qkv.'),
    ('attn.proj.', 'attn.proj.'),
    ('norm2.', 'ln2.'),
    ('mlp.fc1.', 'ffn.layers.0.0.'),
    ('mlp.fc2.', 'ffn.layers.1.'),
]

SWIN_BLOCK_RULES = [  # official suffix in layers.N.blocks.M -> MMPretrain
    ('norm1.', 'norm1.'),
    ('attn.qkv.', 'attn.w_msa.qkv.'),
    ('attn.proj.', 'attn.w_msa.proj.'),
    ('norm2.', 'norm2.'),
    ('mlp.fc1.', 'ffn.layers.0.0.'),
    ('mlp.fc2.', 'ffn.layers.1.'),
]

# Buffers of the original Swin that MMPretrain does not load (the index is
# recomputed, the shift mask is built on the fly).
SWIN_DROPPED_BUFFERS = ('attn.relative_position_index', 'attn_mask')


class ConversionError(Exception):
    """A checkpoint that cannot be converted; the message says why."""


def load_official(path):
    """Read an official checkpoint with torch's weights-only loader.

    Only ``argparse.Namespace`` (the official ``args``) is allowed on top of
    the types torch allows by default.

    Returns:
        tuple: (state dict, container dict or None).
    """
    if not osp.exists(path):
        raise ConversionError(f'{path}: no such file')
    try:
        ckpt = read_checkpoint(path, safe_globals=[argparse.Namespace])
    except CheckpointFileError as e:
        raise ConversionError(str(e)) from e
    for key in ('model', 'state_dict'):
        if key in ckpt and isinstance(ckpt[key], dict):
            return ckpt[key], ckpt
    if not any(torch.is_tensor(v) for v in ckpt.values()):
        raise ConversionError(
            f'{path}: holds no tensors and no "model" state dict '
            f'(top-level keys: {sorted(map(str, ckpt))[:10]})')
    return ckpt, None


def strip_prefixes(state):
    """Drop the DDP ``module.`` and the pre-training ``encoder.`` prefix.

    Returns:
        tuple: (state dict with short keys, dict short key -> source key).
    """
    out, origin = OrderedDict(), {}
    for key, value in state.items():
        new = key[len('module.'):] if key.startswith('module.') else key
        new = new[len('encoder.'):] if new.startswith('encoder.') else new
        if new in out:
            raise ConversionError(
                f'key {key!r} collides with another key once its '
                f'"module."/"encoder." prefix is removed')
        out[new] = value
        origin[new] = key
    return out, origin


def detect_arch(state):
    """'vit' or 'swin', from the key names."""
    keys = [
        k[len('module.'):] if k.startswith('module.') else k for k in state
    ]
    if any(
            re.match(r'(encoder\.)?layers\.\d+\.blocks\.\d+\.', k)
            for k in keys):
        return 'swin'
    if any(re.match(r'(encoder\.)?blocks\.\d+\.', k) for k in keys):
        return 'vit'
    return None


def detect_kind(state):
    """'pretrain' if the checkpoint has a decoder, a mask token or an
    ``encoder.`` prefix, else 'finetune'."""
    for key in state:
        key = key[len('module.'):] if key.startswith('module.') else key
        if (key.startswith(('decoder_', 'encoder.'))
                or key in ('mask_token', 'encoder.mask_token')):
            return 'pretrain'
    return 'finetune'


def _plain(tensor):
    """A contiguous CPU copy that owns its storage (no views are saved)."""
    return tensor.detach().to('cpu').contiguous().clone()


def convert_vit(state):
    """Rename timm-style ViT encoder keys to MMPretrain VisionTransformer.

    Args:
        state (dict): Source state dict, without ``module.``/``encoder.``.

    Returns:
        tuple: (OrderedDict of backbone tensors without the ``backbone.``
        prefix, list of source keys this function used).
    """
    out, used = OrderedDict(), []
    for key, value in state.items():
        new = None
        if key.startswith('patch_embed.proj.'):
            new = 'patch_embed.projection.' + key[len('patch_embed.proj.'):]
        elif key in ('cls_token', 'pos_embed'):
            new = key
        elif key.startswith('norm.'):
            new = 'ln1.' + key[len('norm.'):]
        elif key.startswith('fc_norm.'):
            new = 'ln2.' + key[len('fc_norm.'):]
        else:
            m = re.match(r'blocks\.(\d+)\.(.*)$', key)
            if m:
                rest = _apply_rules(m.group(2), VIT_BLOCK_RULES)
                if rest is not None:
                    new = f'layers.{m.group(1)}.{rest}'
        if new is not None:
            out[new] = _plain(value)
            used.append(key)
    return out, used


def convert_decoder(state):
    """Rename the official decoder to :class:`FastMIMNeck` keys.

    Returns:
        tuple: (OrderedDict of ``neck.*`` tensors, list of used keys).
    """
    out, used = OrderedDict(), []
    simple = {
        'decoder_embed.': 'neck.embed.',
        'decoder_norm.': 'neck.norm.',
        'decoder_pred.': 'neck.pred.',
    }
    for key, value in state.items():
        new = None
        for src, dst in simple.items():
            if key.startswith(src):
                new = dst + key[len(src):]
        m = re.match(r'decoder_blocks\.(\d+)\.(.*)$', key)
        if m:
            rest = _apply_rules(m.group(2), VIT_BLOCK_RULES)
            if rest is not None:
                new = f'neck.blocks.{m.group(1)}.{rest}'
        if new is not None:
            out[new] = _plain(value)
            used.append(key)
    return out, used


def reorder_patch_merging(tensor):
    """Permute patch-merging channels from the original Swin order to
    MMPretrain's ``nn.Unfold`` order.

    Original: channel ``g * C + c`` for the neighbour groups
    g = 0..3 at (row, col) = (0, 0), (1, 0), (0, 1), (1, 1).
    MMPretrain: channel ``c * 4 + row * 2 + col``.

    Args:
        tensor (Tensor): ``reduction.weight`` (out x 4C) or the merge norm's
            weight / bias (4C); the last dimension is permuted.
    """
    channels = tensor.shape[-1] // 4
    groups = tensor.reshape(*tensor.shape[:-1], 4, channels)
    # Unfold position k = row * 2 + col reads original group g(k).
    groups = groups[..., [0, 2, 1, 3], :]
    return groups.transpose(-1, -2).reshape(tensor.shape).contiguous()


def relative_position_index(window_size):
    """Index into a (2W-1)^2 bias table for every pair of positions of a
    W x W window, as the original Swin (and MMPretrain) compute it."""
    coords = torch.stack(
        torch.meshgrid(
            torch.arange(window_size),
            torch.arange(window_size),
            indexing='ij')).flatten(1)  # 2 x W*W
    rel = (coords[:, :, None] - coords[:, None, :]) + (window_size - 1)
    return rel[0] * (2 * window_size - 1) + rel[1]  # W*W x W*W


def _window_from_table(table, key):
    side = round(table.shape[0]**0.5)
    if side * side != table.shape[0] or side % 2 == 0:
        raise ConversionError(
            f'{key}: {table.shape[0]} rows is not (2W-1)^2 for a square '
            f'window W')
    return (side + 1) // 2


def convert_swin(state):
    """Rename original Swin encoder keys to MMPretrain SwinTransformer.

    Args:
        state (dict): Source state dict, without ``module.``/``encoder.``.

    Returns:
        tuple: (OrderedDict of backbone tensors without the ``backbone.``
        prefix, list of source keys used or deliberately dropped).
    """
    stage_ids = [
        int(m.group(1))
        for m in (re.match(r'layers\.(\d+)\.', k) for k in state) if m
    ]
    last_stage = max(stage_ids) if stage_ids else 3
    out, used = OrderedDict(), []
    for key, value in state.items():
        new, tensor = None, value
        if key.startswith('patch_embed.proj.'):
            new = 'patch_embed.projection.' + key[len('patch_embed.proj.'):]
        elif key.startswith('patch_embed.norm.'):
            new = key
        elif key == 'absolute_pos_embed':
            new = key
        elif key.startswith('norm.'):
            new = f'norm{last_stage}.' + key[len('norm.'):]
        else:
            m = re.match(r'layers\.(\d+)\.blocks\.(\d+)\.(.*)$', key)
            d = re.match(
                r'layers\.(\d+)\.downsample\.(reduction|norm)\.'
                r'(weight|bias)$', key)
            if m:
                prefix = f'stages.{m.group(1)}.blocks.{m.group(2)}.'
                rest = m.group(3)
                if rest in SWIN_DROPPED_BUFFERS:
                    used.append(key)  # recomputed below / not needed
                    continue
                if rest == 'attn.relative_position_bias_table':
                    new = prefix + 'attn.w_msa.relative_position_bias_table'
                    window = _window_from_table(value, key)
                    out[prefix + 'attn.w_msa.relative_position_index'] = \
                        relative_position_index(window)
                else:
                    rest = _apply_rules(rest, SWIN_BLOCK_RULES)
                    if rest is not None:
                        new = prefix + rest
            elif d:
                new = (f'stages.{d.group(1)}.downsample.{d.group(2)}.'
                       f'{d.group(3)}')
                tensor = reorder_patch_merging(value)
        if new is not None:
            out[new] = _plain(tensor)
            used.append(key)
    return out, used


def convert_mask_token(state):
    """Returns (OrderedDict with ``mask_token`` or empty, used keys)."""
    if 'mask_token' not in state:
        return OrderedDict(), []
    token = state['mask_token']
    if token.numel() != 3:
        return OrderedDict(), []  # reported as unmapped by the caller
    return OrderedDict(mask_token=_plain(token).reshape(1, 3, 1, 1)), \
        ['mask_token']


def convert_head(state):
    """Classifier ``head.weight/bias`` -> ``LinearClsHead`` ``head.fc.*``."""
    out, used = OrderedDict(), []
    for key in ('head.weight', 'head.bias'):
        if key in state:
            out['head.fc.' + key.split('.')[-1]] = _plain(state[key])
            used.append(key)
    return out, used


def convert(state, arch, kind):
    """Convert a whole (prefix-free) official state dict.

    Returns:
        tuple: (OrderedDict in the target layout, list of unmapped source
        keys, list of notes about the result).
    """
    tensors = OrderedDict(
        (k, v) for k, v in state.items() if torch.is_tensor(v))
    backbone, used = (convert_vit if arch == 'vit' else convert_swin)(tensors)
    out = OrderedDict(('backbone.' + k, v) for k, v in backbone.items())
    notes = []
    if kind == 'pretrain':
        neck, used_neck = convert_decoder(tensors)
        token, used_token = convert_mask_token(tensors)
        out.update(neck)
        out.update(token)
        used += used_neck + used_token
        if not neck:
            notes.append('no decoder (decoder_*) tensors found: the result '
                         'will not load into FastMIM with strict=True')
        if not token:
            notes.append('no usable 3-element mask_token found')
    else:
        head, used_head = convert_head(tensors)
        out.update(head)
        used += used_head
    used = set(used)
    unmapped = [k for k in state if k not in used]
    return out, unmapped, notes


def describe(out, arch, kind):
    """Architecture facts that can be read off the converted tensors, to
    help write the matching config (plain Python values only)."""
    info = dict(arch=arch, kind=kind)
    if arch == 'vit':
        layers = {
            int(m.group(1))
            for m in (re.match(r'backbone\.layers\.(\d+)\.', k) for k in out)
            if m
        }
        info['num_layers'] = len(layers)
        w = out.get('backbone.patch_embed.projection.weight')
        if w is not None:
            info['embed_dims'] = int(w.shape[0])
            info['patch_size'] = int(w.shape[-1])
        fc = out.get('backbone.layers.0.ffn.layers.0.0.weight')
        if fc is not None:
            info['feedforward_channels'] = int(fc.shape[0])
        if kind == 'finetune':
            has_fc_norm = 'backbone.ln2.weight' in out
            info['out_type'] = 'avg_featmap' if has_fc_norm else 'cls_token'
            info['final_norm'] = 'backbone.ln1.weight' in out
    else:
        depths, heads, window = {}, {}, None
        for k, v in out.items():
            m = re.match(
                r'backbone\.stages\.(\d+)\.blocks\.(\d+)\.attn\.'
                r'w_msa\.relative_position_bias_table$', k)
            if m:
                s = int(m.group(1))
                depths[s] = max(depths.get(s, 0), int(m.group(2)) + 1)
                heads[s] = int(v.shape[1])
                window = (round(v.shape[0]**0.5) + 1) // 2
        info['depths'] = [depths[s] for s in sorted(depths)]
        info['num_heads'] = [heads[s] for s in sorted(heads)]
        info['window_size'] = window
        w = out.get('backbone.patch_embed.projection.weight')
        if w is not None:
            info['embed_dims'] = int(w.shape[0])
            info['patch_size'] = int(w.shape[-1])
    if kind == 'pretrain':
        blocks = {
            int(m.group(1))
            for m in (re.match(r'neck\.blocks\.(\d+)\.', k) for k in out) if m
        }
        info['neck_num_layers'] = len(blocks)
        if 'neck.embed.weight' in out:
            info['neck_embed_dims'] = int(out['neck.embed.weight'].shape[0])
        if 'neck.pred.weight' in out:
            info['neck_out_channels'] = int(out['neck.pred.weight'].shape[0])
    elif 'head.fc.weight' in out:
        info['num_classes'] = int(out['head.fc.weight'].shape[0])
    return info


def _plain_value(value):
    """Keep a value in meta only if weights-only loading can read it."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain_value(v) for v in value]
    return repr(value)


def build_meta(src, container, info):
    meta = dict(
        converter='tools/model_converters/fastmim_official_to_mm.py',
        source=osp.basename(src),
        **info)
    if container is not None:
        epoch = container.get('epoch')
        if isinstance(epoch, int):
            meta['epoch'] = epoch
        args = container.get('args')
        if isinstance(args, argparse.Namespace):
            meta['official_args'] = {
                str(k): _plain_value(v)
                for k, v in vars(args).items()
            }
    return meta


def save_atomic(obj, dst):
    """Serialise in memory, then write ``dst`` whole or not at all."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    AtomicLocalBackend().put(buf.getvalue(), dst)


def _apply_rules(suffix, rules):
    for src, dst in rules:
        if suffix.startswith(src):
            return dst + suffix[len(src):]
    return None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert an official FastMIM checkpoint (ViT or Swin, '
        'pre-training or fine-tuned) to this toolkit / MMPretrain layout.')
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument(
        '--arch', choices=['vit', 'swin'], help='override the detection')
    parser.add_argument(
        '--kind',
        choices=['pretrain', 'finetune'],
        help='override the detection')
    parser.add_argument(
        '--strict',
        action='store_true',
        help='fail (and write nothing) if a source key cannot be mapped')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        raw, container = load_official(args.src)
        if any(str(k).startswith(('backbone.', 'neck.')) for k in raw):
            raise ConversionError(
                f'{args.src}: has backbone./neck. keys, i.e. it is already '
                f'in the MMPretrain layout')
        arch = args.arch or detect_arch(raw)
        if arch is None:
            raise ConversionError(
                f'{args.src}: cannot tell a ViT (blocks.N.*) from a Swin '
                f'(layers.N.blocks.M.*) checkpoint; pass --arch')
        kind = args.kind or detect_kind(raw)
        state, origin = strip_prefixes(raw)
        out, unmapped, notes = convert(state, arch, kind)
    except ConversionError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2

    if not out:
        print(
            f'error: {args.src}: no tensor could be mapped as a {arch} '
            f'{kind} checkpoint',
            file=sys.stderr)
        return 2
    target = ('FastMIM (backbone/neck/mask_token)'
              if kind == 'pretrain' else 'ImageClassifier (backbone/head)')
    print(f'{args.src}: {arch} {kind} checkpoint, {len(state)} source keys')
    dropped = [
        k for k in state
        if k.endswith(SWIN_DROPPED_BUFFERS) and k not in unmapped
    ] if arch == 'swin' else []
    print(f'converted {len(state) - len(unmapped) - len(dropped)} source '
          f'tensors into {len(out)} tensors of the {target} layout')
    if dropped:
        print(f'dropped {len(dropped)} relative_position_index/attn_mask '
              f'buffers (relative_position_index is recomputed from the '
              f'window size)')
    for note in notes:
        print(f'note: {note}')
    if unmapped:
        print(f'could not map {len(unmapped)} source keys:')
        for key in unmapped:
            value = state[key]
            what = (
                tuple(value.shape)
                if torch.is_tensor(value) else type(value).__name__)
            print(f'  unmapped: {origin[key]} {what}')
        if args.strict:
            print(
                f'error: --strict: {len(unmapped)} unmapped keys, '
                f'{args.dst} not written',
                file=sys.stderr)
            return 1

    info = describe(out, arch, kind)
    print('architecture: ' + ', '.join(f'{k}={v}' for k, v in info.items()))
    save_atomic(
        dict(state_dict=out, meta=build_meta(args.src, container, info)),
        args.dst)
    print(f'saved {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
