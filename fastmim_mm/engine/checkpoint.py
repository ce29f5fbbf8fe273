"""Reading checkpoints with torch's weights-only loader.

:func:`read_checkpoint` loads weights-only, allowing the types MMEngine
saves besides tensors (its message hub's ``HistoryBuffer`` and numpy
objects) and nothing else. It says in one line what a file given as a
checkpoint is when it is not one (torch's own errors read "pop from empty
list" for a text file, or advise turning weights-only loading off).
"""
import os.path as osp
import pickle
import re
from typing import Sequence

import torch

from ..compat.torch_load import mmengine_checkpoint_types


class CheckpointFileError(ValueError):
    """A file given as a checkpoint that is not one; the message names it."""


# File signatures of what is most often passed by mistake.
_SIGNATURES = ((b'\xff\xd8\xff', 'a JPEG image'), (b'\x89PNG', 'a PNG image'),
               (b'GIF8', 'a GIF image'), (b'%PDF', 'a PDF document'),
               (b'\x1f\x8b', 'a gzip archive'))
_ZIP = b'PK\x03\x04'  # torch.save's format since torch 1.6


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:  # (or a multi-byte character cut at 512)
        return False
    return all(c.isprintable() or c.isspace() for c in text)


def read_checkpoint(path: str,
                    map_location='cpu',
                    safe_globals: Sequence = (),
                    refused_hint: str = '') -> dict:
    """``torch.load(path, weights_only=True)`` that says in one line what is
    wrong when ``path`` is not a checkpoint.

    Args:
        path (str): The file.
        map_location: As for :func:`torch.load`. Defaults to 'cpu'.
        safe_globals (Sequence): Types allowed on top of torch's and
            MMEngine's. Defaults to ().
        refused_hint (str): Appended to the message when weights-only
            loading refuses an object in the file. Defaults to ''.

    Returns:
        dict: The checkpoint.

    Raises:
        FileNotFoundError: Nothing is at ``path``.
        CheckpointFileError: A directory, an empty, truncated or damaged
            file, another kind of file (text, image, ...), a pickle with
            objects weights-only loading refuses, or one that holds no dict.
    """
    path = osp.expanduser(path)
    if osp.isdir(path):
        raise CheckpointFileError(
            f'{path} is a directory, not a checkpoint file: give the .pth '
            f'file in it.')
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist.')
    size = osp.getsize(path)
    if size == 0:
        raise CheckpointFileError(
            f'{path} is empty (0 bytes), not a checkpoint: it was cut off '
            f'while being written or copied.')
    with open(path, 'rb') as f:
        head = f.read(512)
    kind = next(
        (name for magic, name in _SIGNATURES if head.startswith(magic)), None)
    if kind is None and _looks_like_text(head):
        kind = 'a text file'
    if kind is not None:
        raise CheckpointFileError(
            f'{path} is {kind}, not a PyTorch checkpoint.')
    # safe_globals() removes on exit all it was given, also what was
    # allowed before: give it only what is not.
    allowed = set(torch.serialization.get_safe_globals())
    extra = [
        t for t in (*mmengine_checkpoint_types(), *safe_globals)
        if t not in allowed
    ]
    try:
        with torch.serialization.safe_globals(extra):
            checkpoint = torch.load(
                path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        refused = re.search(r'GLOBAL ([\w.]+)', str(e))
        if refused is None:
            # torch's first lines advise weights_only=False: keep the cause.
            cause = _first_line(
                Exception(str(e).split('WeightsUnpickler error:')[-1]))
            if 'weights_only' in cause:
                cause = type(e).__name__
            raise CheckpointFileError(
                f'{path} is not a PyTorch checkpoint (unpickling stopped: '
                f'{cause}).') from e
        raise CheckpointFileError(
            f'{path} holds a {refused.group(1)} object, which weights-only '
            f'loading refuses (unpickling it could run code).' +
            (f' {refused_hint}' if refused_hint else '')) from e
    except Exception as e:  # noqa: BLE001 - torch raises many kinds here
        if head.startswith(_ZIP) or isinstance(e, EOFError):
            raise CheckpointFileError(
                f'{path} is truncated or damaged ({size} bytes; torch: '
                f'{_first_line(e)}): copy or download it again.') from e
        raise CheckpointFileError(
            f'{path} is not a PyTorch checkpoint (torch.load: '
            f'{type(e).__name__}: {_first_line(e)}).') from e
    if not isinstance(checkpoint, dict):
        raise CheckpointFileError(
            f'{path} holds a {type(checkpoint).__name__}, not a checkpoint '
            f'(a state dict, or a dict with a "state_dict").')
    return checkpoint
