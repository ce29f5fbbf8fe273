"""Checks of the command line of tools/train.py and tools/test.py.

``--cfg-options``: MMEngine merges any key it is given, so a misspelt one
(``train_dataloadr.batch_size=4``) becomes a new, unread setting and the
run trains with the config's value. Here a key that does not exist is
accepted only where something will read it: a top-level setting the
Runner knows, or an argument of the class a ``type`` names (or of the
loop, data loader or randomness set-up MMEngine builds from a dict
without ``type``; ``**kwargs`` handed to a base class count as the base's
arguments). Below a class whose ``**kwargs`` go anywhere else, or below a
value that is not a dict, nothing can be checked and any key passes. A key
meant to be new is written with a leading ``+`` (``+my_key=1``).

A top-level key the Runner does not read is a variable of the config file
(``checkpoint = '...'``, ``data_root``, ``image_size``): its value was
copied where it was used when the config was parsed, so setting it changes
nothing. It is refused, with the keys that hold its value.

``--resume`` without a path: refused when the work dir has no checkpoint.
"""
import difflib
import importlib
import inspect
import os.path as osp
import re
from typing import Iterable, Iterator, Optional, Set

from mmengine.config import Config
from mmengine.runner import (EpochBasedTrainLoop, IterBasedTrainLoop,
                             find_latest_checkpoint)
from torch import nn
from torch.utils.data import DataLoader

from ..compat import private_api

NEW_KEY_PREFIX = '+'

# Top-level settings MMEngine's Runner reads (Runner.from_cfg and the
# self.cfg.get calls of mmengine 0.10), whether the config sets them or not.
RUNNER_KEYS = {
    'model', 'work_dir', 'train_dataloader', 'val_dataloader',
    'test_dataloader', 'train_cfg', 'val_cfg', 'test_cfg', 'auto_scale_lr',
    'optim_wrapper', 'param_scheduler', 'val_evaluator', 'test_evaluator',
    'default_hooks', 'custom_hooks', 'data_preprocessor', 'load_from',
    'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level',
    'visualizer', 'default_scope', 'randomness', 'experiment_name', 'compile',
    'activation_checkpointing', 'efficient_conv_bn_eval', 'model_wrapper_cfg',
    'runner_type', 'sync_bn', 'find_unused_parameters', 'custom_imports'
}

# Keys of the data loader dicts: Runner.build_dataloader pops these and
# passes the rest to torch's DataLoader.
_DATALOADER_KEYS = {
    'dataset', 'sampler', 'batch_sampler', 'collate_fn', 'worker_init_fn',
    'num_batch_per_epoch', 'disable_subprocess_warning'
}

# Who reads the dicts without ``type`` that _accepted knows.
_TYPELESS = dict(
    train_dataloader='the data loader',
    val_dataloader='the data loader',
    test_dataloader='the data loader',
    randomness="MMEngine's randomness set-up",
    env_cfg="MMEngine's env_cfg")

_REGISTRIES = ('MODELS', 'DATASETS', 'TRANSFORMS', 'DATA_SAMPLERS', 'HOOKS',
               'LOOPS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
               'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS',
               'EVALUATOR', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS',
               'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'TASK_UTILS',
               'FUNCTIONS', 'RUNNERS')


def _arguments(obj) -> Optional[Set[str]]:
    """Names a class or function accepts; None if it takes ``**kwargs``
    that go anywhere but to its base class."""
    if inspect.isclass(obj):
        return _class_arguments(obj)
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind is not p.VAR_POSITIONAL}


def _class_arguments(cls) -> Optional[Set[str]]:
    """Arguments of ``cls.__init__``, following ``**kwargs`` up the MRO
    while each ``__init__`` hands them to its base's."""
    names: Set[str] = set()
    for klass in cls.__mro__:
        if klass in (object, nn.Module):
            return names
        init = vars(klass).get('__init__')
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {
            p.name
            for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }
        varkw = [p.name for p in params if p.kind is p.VAR_KEYWORD]
        if not varkw:
            return names - {'self'}
        try:
            source = inspect.getsource(init)
        except (OSError, TypeError):
            return None
        if not re.search(
                r'\.__init__\((?:[^()]|\([^()]*\))*\*\*' + varkw[0] + r'\b',
                source):
            return None
    return names - {'self'}


def _registered(type_name: str, scope: str) -> list:
    """Everything registered as ``type_name`` in the scope's registries."""
    try:
        module = importlib.import_module(f'{scope}.registry')
    except ImportError:
        module = importlib.import_module('mmengine.registry')
    found = []
    for name in _REGISTRIES:
        registry = getattr(module, name, None)
        try:
            obj = registry.get(type_name) if registry is not None else None
        except (KeyError, ImportError):
            obj = None
        if obj is not None and obj not in found:
            found.append(obj)
    return found


def _train_loop(train_cfg: dict):
    """The loop MMEngine builds from a ``train_cfg`` without ``type``."""
    return (EpochBasedTrainLoop
            if train_cfg.get('by_epoch', True) else IterBasedTrainLoop)


def _accepted(path: tuple, node: dict, scope: str) -> Optional[Set[str]]:
    """The keys the dict at ``path`` may hold; None where unknown."""
    if 'type' in node:
        type_ = node['type']
        objs = ([type_] if callable(type_) else _registered(type_, scope))
        keys = {'type', '_scope_'}
        for obj in objs:
            args = _arguments(obj)
            if args is None:
                return None
            keys |= args
        return keys if objs else None
    if path in (('train_dataloader', ), ('val_dataloader', ),
                ('test_dataloader', )):
        return _DATALOADER_KEYS | _arguments(DataLoader)
    if path == ('train_cfg', ):
        loop = _train_loop(node)
        return {'by_epoch'} | _arguments(loop) - {'runner', 'dataloader'}
    if path == ('randomness', ):
        return {'seed', 'diff_rank_seed', 'deterministic'}
    if path == ('env_cfg', ):
        return {'cudnn_benchmark', 'mp_cfg', 'dist_cfg', 'resource_limit'}
    return None


def _suggest(key: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, sorted(candidates), n=1)
    return f' Did you mean {close[0]!r}?' if close else ''


def unknown_key_message(cfg: Config, full_key: str) -> Optional[str]:
    """Why ``full_key`` matches nothing in ``cfg``, or None if it does (or
    if nothing can tell)."""
    scope = cfg.get('default_scope') or 'mmengine'
    parts = full_key.split('.')
    node = private_api.config_tree(cfg)
    for i, key in enumerate(parts):
        path = tuple(parts[:i])
        where = '.'.join(path)
        if isinstance(node, (list, tuple)):
            if not key.isdigit() or int(key) >= len(node):
                return (f'has {len(node)} items in the list {where}, so '
                        f'{key!r} names none of them.')
            node = node[int(key)]
            continue
        if not isinstance(node, dict):
            return None  # the override replaces a value: nothing to check
        if key in node:
            node = node[key]
            continue
        accepted = RUNNER_KEYS if not path else _accepted(path, node, scope)
        if accepted is None or key in accepted:
            return None
        suggestion = _suggest(key, set(node) | accepted)
        inner = node.get('dataset')
        if isinstance(inner, dict) and key in inner:
            suggestion = (f' Did you mean {where}.dataset.{key}? (the '
                          f'{node.get("type")} in {where} wraps a dataset)')
        if not path:
            return f'has no top-level key {key!r}.{suggestion}'
        owner = node.get('type', _TYPELESS.get(path[0], 'MMEngine'))
        if path == ('train_cfg', ) and 'type' not in node:
            owner = _train_loop(node)
        owner = getattr(owner, '__name__', owner)
        return (f'has no key {key!r} in {where}, and {owner} takes no '
                f'argument {key!r}.{suggestion}')
    return None


def _paths(node, path: str = '') -> Iterator[tuple]:
    """(key, value) of every key below ``node``, lists' items included."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    else:
        return
    for key, child in items:
        full = f'{path}.{key}' if path else str(key)
        yield full, child
        yield from _paths(child, full)


def _as_option(value) -> str:
    """``value`` as ``--cfg-options`` takes it."""
    return value if isinstance(value, str) else str(value).replace(' ', '')


def variable_key_message(cfg: Config, full_key: str, value) -> Optional[str]:
    """Why ``--cfg-options full_key=value`` cannot change the run, when it
    names a variable of the config file (a top-level key the Runner does
    not read); else None."""
    name = full_key.split('.')[0]
    tree = private_api.config_tree(cfg)
    if name in RUNNER_KEYS or name not in tree:
        return None
    held = tree[name]
    runner_settings = {k: v for k, v in tree.items() if k in RUNNER_KEYS}
    settings = list(_paths(runner_settings))
    # None and booleans are everywhere; equal values say nothing there.
    paths = [] if held is None or isinstance(held, bool) else [
        p for p, v in settings if type(v) is type(held) and v == held
    ]
    what = 'holding its value'
    if not paths:  # the variable's value was overridden everywhere
        paths, what = [p for p, _ in settings
                       if p.rsplit('.', 1)[-1] == name], 'of that name'
    if len(paths) == 1 and full_key == name:
        where = (f'Set {paths[0]}={_as_option(value)} instead (the key '
                 f'{what}).')
    elif paths:
        more = f' and {len(paths) - 4} more' if len(paths) > 4 else ''
        where = (f'The keys {what}: {", ".join(paths[:4])}{more}; set '
                 f'those that came from it instead.')
    else:
        where = ('No key holds its value as it is; set those it was used '
                 'in (a run\'s log file starts with the whole config).')
    return (f'--cfg-options {full_key}: {name!r} is a variable of the '
            f'config file, copied where it is used when the config was '
            f'read, so setting it now changes nothing. {where}')


def merge_cfg_options(cfg: Config, options: Optional[dict]) -> None:
    """Merge ``--cfg-options`` into ``cfg`` after checking every key.

    Raises:
        ValueError: one line naming the first key that matches nothing,
            with the closest existing key, or that names a variable of the
            config file, with the keys holding its value.
    """
    if not options:
        return
    checked = {}
    for full_key, value in options.items():
        if full_key.startswith(NEW_KEY_PREFIX):
            checked[full_key[len(NEW_KEY_PREFIX):]] = value
            continue
        message = variable_key_message(cfg, full_key, value)
        if message is not None:
            raise ValueError(message)
        message = unknown_key_message(cfg, full_key)
        if message is not None:
            raise ValueError(
                f'--cfg-options {full_key}: the config {message} To add it '
                f'as a new key on purpose, write '
                f'{NEW_KEY_PREFIX}{full_key}=...')
        checked[full_key] = value
    cfg.merge_from_dict(checked)


def auto_resume_error(work_dir: str) -> Optional[str]:
    """Why ``--resume`` without a path cannot continue in ``work_dir``, or
    None. A run given ``--resume`` never starts from scratch silently."""
    latest = find_latest_checkpoint(work_dir)
    if latest is None:
        return (f'--resume: no checkpoint to resume in the work dir '
                f'{work_dir} (no last_checkpoint file there). Check '
                f'--work-dir, give --resume CHECKPOINT, or leave out '
                f'--resume to start a new run.')
    if not osp.isfile(latest):
        return (f'--resume: {osp.join(work_dir, "last_checkpoint")} names '
                f'{latest}, which does not exist. Give --resume '
                f'CHECKPOINT.')
    return None
