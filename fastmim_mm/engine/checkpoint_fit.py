"""Check that a checkpoint fits the model it is loaded into.

MMEngine loads every checkpoint a config names (a backbone's
``init_cfg=dict(type='Pretrained', ...)``, ``load_from``, ``--resume``)
non-strictly: tensors that do not fit are skipped with a "do not match
exactly" warning and the run trains from random weights. Inside a
:class:`CheckedLoading` block (:class:`~fastmim_mm.engine.FastMIMRunner`
opens one around every load of its run) a load that does not fit stops
with one line naming the file, the first tensors that do not fit and the
likely cause. Only the expected differences pass, summarised in one log
line:

- position embeddings and relative-position tables of another size (the
  backbones resize them on load) and relative-position index buffers
  (recomputed);
- norms after the last block or per output stage added or left out (e.g.
  the final norm swapped for the pooling norm when fine-tuning, a norm per
  stage for detection);
- relative position bias tables and layer scales a BEiT backbone adds to a
  ViT checkpoint, and blocks beyond the depth of a truncated encoder;
- with ``load_from``, heads and necks outside the backbone that are new or
  of another size.

A ``--resume`` checkpoint must fit exactly, and one loaded into a FastMIM
model passes ``FastMIM.check_checkpoint``. Local files are read
weights-only (:func:`~fastmim_mm.engine.read_checkpoint`).
"""
import logging
import re
from contextlib import ExitStack
from typing import Dict, List, Optional, Tuple

from mmengine.logging import print_log
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.runner import checkpoint as mm_checkpoint

from ..compat import private_api
from ..compat.scipy_interp2d import tables_resized_without_interp2d
from .checkpoint import read_checkpoint

CONVERTER = 'tools/model_converters/fastmim_official_to_mm.py'
_REFUSED_HINT = ('MMEngine and this toolkit save no such objects; an '
                 'official FastMIM checkpoint is converted with python '
                 f'{CONVERTER} SRC DST.')

_OUTPUT_NORM = re.compile(r'^(ln\d*|norm\d*|fc_norm|pre_norm)\.')
# Keys of the official FastMIM code (timm ViT, original Swin, its decoder).
_OFFICIAL = re.compile(r'^(module\.)?(encoder\.)?(decoder_|blocks\.\d+\.mlp\.'
                       r'|layers\.\d+\.blocks\.\d+\.)')


class CheckpointMismatchError(ValueError):
    """A checkpoint that does not fit the model; the message says why."""


Shapes = Dict[str, Tuple[int, ...]]


def _shapes(state: dict) -> Shapes:
    return {
        k: tuple(v.shape)
        for k, v in state.items()
        if hasattr(v, 'shape') and not k.endswith('num_batches_tracked')
    }


def _expected(key: str, kind: str, own: Shapes, theirs: Shapes, mode: str,
              has_backbone: bool) -> Optional[str]:
    """Why a key may differ, or None if it must not.

    ``kind`` is 'shape', 'missing' (from the checkpoint) or 'unexpected'.
    """
    name = key.rsplit('.', 1)[-1]
    resized = kind == 'shape' and (name in ('pos_embed', 'absolute_pos_embed',
                                            'relative_position_bias_table')
                                   and own[key][-1] == theirs[key][-1])
    if mode == 'resume':
        return None
    if mode == 'exact':
        return 'resized' if resized else None
    local = key
    if mode == 'model' and has_backbone:
        if not key.startswith('backbone.'):
            return 'new head' if kind in ('shape', 'missing') else None
        local = key[len('backbone.'):]
    if resized:
        return 'resized'
    if name == 'relative_position_index':
        return 'recomputed'
    if _OUTPUT_NORM.match(local) and kind != 'shape':
        return 'output norm'
    if kind == 'missing' and name in ('gamma_1', 'gamma_2',
                                      'relative_position_bias_table'):
        return 'new in the model'
    if kind == 'missing' and name in ('q_bias', 'v_bias') and \
            key[:-len(name)] + 'qkv.bias' in theirs:
        return 'split qkv bias'
    if kind == 'unexpected' and key.endswith('attn.qkv.bias') and \
            key[:-len('qkv.bias')] + 'q_bias' in own:
        return 'split qkv bias'
    block = re.match(r'layers\.(\d+)\.', local)
    if kind == 'missing' and block and 0 < _depth(
            theirs, key[:len(key) - len(local)]) <= int(block[1]):
        return 'truncated encoder'
    return None


def _depth(shapes: Shapes, prefix: str) -> int:
    """The number of ``layers.N`` blocks of a ViT checkpoint."""
    blocks = [
        int(m[1]) for k in shapes
        for m in [re.match(re.escape(prefix) + r'layers\.(\d+)\.', k)] if m
    ]
    return max(blocks) + 1 if blocks else 0


def _family(shapes: Shapes) -> str:
    """A short description of the architecture the tensors belong to."""
    keys = ' '.join(shapes)
    patch = next((v for k, v in shapes.items()
                  if k.endswith('patch_embed.projection.weight')), None)
    width = f', {patch[0]} wide, {patch[-1]} px patches' if patch else ''
    if 'w_msa' in keys:
        depths = {}
        for k in shapes:
            m = re.search(r'stages\.(\d+)\.blocks\.(\d+)\.', k)
            if m:
                depths[int(m[1])] = max(
                    depths.get(int(m[1]), 0),
                    int(m[2]) + 1)
        depth = '-'.join(str(depths[s]) for s in sorted(depths))
        return f'Swin (depths {depth}{width})'
    blocks = {
        int(m[1])
        for k in shapes
        for m in [re.search(r'layers\.(\d+)\.attn\.', k)] if m
    }
    if blocks:
        return f'ViT ({len(blocks)} blocks{width})'
    if re.search(r'layer\d\.\d+\.conv1\.', keys):
        return 'ResNet'
    return 'model of another layout'


def _cause(own: Shapes, theirs: Shapes, mode: str, whole: bool,
           prefix: Optional[str]) -> str:
    if any(_OFFICIAL.search(k) for k in theirs):
        return (f'it is in the official FastMIM layout: convert it first '
                f'with python {CONVERTER} SRC DST.')
    for head in sorted({k.split('.', 1)[0] + '.' for k in theirs}):
        stripped = {k[len(head):] for k in theirs if k.startswith(head)}
        if len(stripped & set(own)) > len(own) // 2:
            return (f"its keys carry the prefix '{head}': load it with "
                    f"init_cfg=dict(type='Pretrained', checkpoint=..., "
                    f"prefix='{head}').")
    if whole and len({'backbone.' + k for k in theirs} & set(own)) > \
            len(own) // 4:
        return ('it holds a backbone alone: load it with '
                "model.backbone.init_cfg=dict(type='Pretrained', "
                'checkpoint=...) instead.')
    pretrain_ckpt = 'mask_token' in theirs
    if whole and pretrain_ckpt and 'mask_token' not in own:
        return ('it is a FastMIM pre-training checkpoint: start from its '
                "encoder with model.backbone.init_cfg=dict(type='Pretrained'"
                ", checkpoint=..., prefix='backbone.') instead of "
                'load_from.')
    if mode == 'exact' and 'mask_token' in own and not pretrain_ckpt:
        return ('it is not a FastMIM pre-training checkpoint (no '
                'mask_token; a fine-tuned one?): give it to a fine-tuning '
                'config, or pre-train from a FastMIM checkpoint.')
    if mode == 'resume':
        return ('it was saved by another model than this config builds: '
                'resume with the config it was trained with (the '
                "checkpoint keeps it in meta['cfg']), or start from it "
                'with load_from.')
    strip = 'backbone.' if whole else ''
    ours = _family({
        k[len(strip):]: v
        for k, v in own.items() if k.startswith(strip)
    })
    its = _family({
        k[len(strip):]: v
        for k, v in theirs.items() if k.startswith(strip)
    })
    if ours != its:
        return (f'another architecture: the checkpoint holds a {its}, the '
                f'model is a {ours}; set the backbone as in the config the '
                f"checkpoint was trained with (kept in its meta['cfg']).")
    return ('the checkpoint was saved from a differently configured model: '
            'set the model as in the config it was trained with (kept in '
            "its meta['cfg']).")


def _first(items: List[str], n: int = 3) -> str:
    more = f', ... ({len(items)} in all)' if len(items) > n else ''
    return ', '.join(items[:n]) + more


def _mode(module, resume: bool) -> str:
    """How a load into ``module`` is checked: 'resume' (a whole model,
    exactly), 'exact' (a model with its own ``check_checkpoint``), 'model'
    (a whole model) or 'part' (a backbone or other part)."""
    whole = isinstance(module, BaseModel)
    if resume and whole:
        return 'resume'
    if hasattr(module, 'check_checkpoint'):
        return 'exact'
    return 'model' if whole else 'part'


def check_fit(module,
              state_dict: dict,
              file: Optional[str] = None,
              prefix: Optional[str] = None,
              resume: bool = False) -> str:
    """Raise :class:`CheckpointMismatchError` unless ``state_dict`` fits
    ``module`` up to the expected differences; return a one-line summary.

    Args:
        module (nn.Module): The module the tensors are loaded into.
        state_dict (dict): The tensors, keys relative to ``module``.
        file (str, optional): The checkpoint file, for the messages.
        prefix (str, optional): The prefix ``init_cfg`` selected.
        resume (bool): The checkpoint is resumed: it must fit exactly.
    """
    whole = isinstance(module, BaseModel)
    mode = _mode(module, resume)
    source = file or 'the checkpoint'
    own, theirs = _shapes(module.state_dict()), _shapes(state_dict)
    has_backbone = hasattr(module, 'backbone')
    found = dict(
        shape=[k for k in own if k in theirs and own[k] != theirs[k]],
        missing=[k for k in own if k not in theirs],
        unexpected=[k for k in theirs if k not in own])
    blocking, passed = {}, {}
    for kind, keys in found.items():
        for key in keys:
            reason = _expected(key, kind, own, theirs, mode, has_backbone)
            if reason is None:
                blocking.setdefault(kind, []).append(key)
            else:
                passed.setdefault((reason, kind), []).append(key)
    loaded = [k for k in own if k in theirs and own[k] == theirs[k]]
    target = (f'the {type(module).__name__} model'
              if whole else f'the {type(module).__name__} it initialises' +
              (f" (prefix '{prefix}')" if prefix else ''))
    if blocking or not loaded:
        parts = []
        for kind, what in (('shape', 'differ in shape'),
                           ('missing', 'are missing from the checkpoint'),
                           ('unexpected', 'are in the checkpoint only')):
            keys = blocking.get(kind, [])
            if kind == 'shape' and keys:
                k = keys[0]
                keys = [f'{k}: checkpoint {theirs[k]} vs model {own[k]}'
                        ] + keys[1:]
            if keys:
                parts.append(f'{len(keys)} tensors {what} ({_first(keys)})')
        if not parts:
            parts.append('no tensor of it fits')
        raise CheckpointMismatchError(f'{source} does not fit {target}: ' +
                                      '; '.join(parts) + '. Likely cause: ' +
                                      _cause(own, theirs, mode, whole, prefix))
    notes = []
    labels = {
        ('resized', 'shape'):
        'resized',
        ('recomputed', 'missing'):
        'recomputed',
        ('recomputed', 'unexpected'):
        'not used (recomputed)',
        ('recomputed', 'shape'):
        'recomputed',
        ('output norm', 'missing'):
        'new output norms',
        ('output norm', 'unexpected'):
        'output norms not used',
        ('new in the model', 'missing'):
        'new in the model',
        ('split qkv bias', 'missing'):
        'q/v biases from the qkv biases',
        ('split qkv bias', 'unexpected'):
        'qkv biases split into q/v',
        ('truncated encoder', 'missing'):
        'blocks beyond the checkpoint\'s '
        'depth, initialised anew',
        ('new head', 'missing'):
        'new head/neck tensors',
        ('new head', 'shape'):
        'head/neck tensors of another shape, '
        'initialised anew',
    }
    for key, keys in passed.items():
        if key[1] == 'shape':
            keys = [f'{k} {theirs[k]} -> {own[k]}' for k in keys]
        notes.append(f'{labels[key]}: {_first(keys, 2)}')
    return (f'Loaded {source} into {target}: {len(loaded)} of {len(own)} '
            f'tensors as they are' +
            ('; ' + '; '.join(notes) if notes else '') + '.')


class CheckedLoading:
    """Check every checkpoint MMEngine loads inside a ``with`` block.

    :class:`~fastmim_mm.engine.FastMIMRunner` enters one around the loads
    of its run (the weights' initialisation, ``load_from``, ``--resume``);
    a user's script can do the same around ``model.init_weights()`` or
    ``load_checkpoint``. For the block's duration MMEngine's
    ``load_state_dict``, ``_load_checkpoint_with_prefix`` and local-file
    checkpoint scheme go through :meth:`load_state_dict`,
    :meth:`load_with_prefix` and :meth:`load_local_file`, and MMPretrain's
    Swin/BEiT backbones resize their relative-position tables without
    SciPy's removed ``interp2d``
    (``compat.scipy_interp2d.tables_resized_without_interp2d``);
    all is restored on exit, and loads outside the block behave as
    MMEngine's.

    Args:
        resume (bool): Whole-model loads must fit exactly (``--resume``).
            Defaults to False.
    """

    def __init__(self, resume: bool = False) -> None:
        self.resume = resume
        # Where the next load_state_dict call's tensors come from.
        self._source: Dict[str, Optional[str]] = dict(file=None, prefix=None)
        self._saved: Optional[dict] = None
        self._tables = ExitStack()

    def __enter__(self) -> 'CheckedLoading':
        if self._saved is not None:
            raise RuntimeError('a CheckedLoading block is already open.')
        self._tables.enter_context(tables_resized_without_interp2d())
        self._saved = dict(
            load_state_dict=mm_checkpoint.load_state_dict,
            prefix_loader=private_api.prefix_checkpoint_loader(),
            local_loader=private_api.local_checkpoint_loader())
        mm_checkpoint.load_state_dict = self.load_state_dict
        private_api.set_prefix_checkpoint_loader(self.load_with_prefix)
        private_api.set_local_checkpoint_loader(self.load_local_file)
        return self

    def __exit__(self, *exc_info) -> None:
        saved, self._saved = self._saved, None
        mm_checkpoint.load_state_dict = saved['load_state_dict']
        private_api.set_prefix_checkpoint_loader(saved['prefix_loader'])
        private_api.set_local_checkpoint_loader(saved['local_loader'])
        self._tables.close()

    def load_local_file(self, filename: str, map_location=None) -> dict:
        """MMEngine's local-file scheme, with :func:`read_checkpoint`'s
        messages (``CheckpointLoader`` logs the name after ``load_``)."""
        checkpoint = read_checkpoint(
            filename, map_location=map_location, refused_hint=_REFUSED_HINT)
        self._source.update(file=filename, prefix=None)
        return checkpoint

    def load_with_prefix(self, prefix: str, filename: str, map_location=None):
        """MMEngine's ``_load_checkpoint_with_prefix``; an absent prefix
        ends in one line naming the prefixes the file has."""
        try:
            state = self._saved['prefix_loader'](
                prefix, filename, map_location=map_location)
        except AssertionError:  # no key starts with the prefix
            checkpoint = private_api.load_checkpoint_file(
                filename, map_location)
            theirs = _shapes(checkpoint.get('state_dict', checkpoint))
            heads = sorted({k.split('.', 1)[0] + '.' for k in theirs})
            cause = _cause({}, theirs, 'part', False, prefix) if any(
                _OFFICIAL.search(k) for k in theirs) else (
                    f'set init_cfg.prefix to the one its keys carry (they '
                    f'begin with {_first(heads)}), or leave prefix out if '
                    f'they are the backbone\'s own.')
            raise CheckpointMismatchError(
                f"{filename} has no tensor under the prefix '{prefix}' that "
                f'init_cfg selects. Likely cause: {cause}') from None
        self._source.update(file=filename, prefix=prefix)
        return state

    def load_state_dict(self, module, state_dict, strict=False, logger=None):
        """MMEngine's ``load_state_dict``, checked by :func:`check_fit`.

        A model that checks its checkpoints itself (``check_checkpoint``,
        run by its load hook) is checked by that hook alone; its message
        then gets the file's name.
        """
        target = module.module if is_model_wrapper(module) else module
        source = dict(self._source)
        self._source.update(file=None, prefix=None)
        resume = self.resume or strict
        checks_itself = _mode(target, resume) == 'exact'
        if not checks_itself:
            summary = check_fit(target, state_dict, resume=resume, **source)
        collect = _Collect()
        try:
            self._saved['load_state_dict'](module, state_dict, strict, collect)
        except ValueError as e:
            if not checks_itself:
                raise
            raise CheckpointMismatchError(
                f'{source["file"] or "the checkpoint"}: {e}') from e
        if checks_itself:
            summary = check_fit(target, state_dict, resume=resume, **source)
        message = '\n'.join(collect.messages)
        skipped = re.findall(r'size mismatch for ([\w.]+)', message)
        missing = re.search(r'missing keys in source state_dict: (.*)',
                            message)
        # What a backbone's load hook should have made (resized, split) and
        # did not.
        skipped += [
            k for k in (missing[1].split(', ') if missing else [])
            if k.endswith(('.q_bias', '.v_bias'))
        ]
        if skipped:
            raise CheckpointMismatchError(
                f'{source["file"] or "the checkpoint"}: {len(skipped)} '
                f'tensors of the {type(target).__name__} could not be loaded '
                f'from it ({_first(skipped)}): it has no load hook that '
                f'resizes or splits them (FastMIMBEiTViT splits qkv biases).')
        print_log(summary, logger='current')


class _Collect(logging.Logger):
    """A logger that keeps MMEngine's message instead of printing it."""

    def __init__(self):
        super().__init__('fastmim_mm.checkpoint_fit')
        self.messages = []

    def log(self, level, msg, *args, **kwargs):
        self.messages.append(str(msg))
