"""Build-time and load-time checks of a :class:`FastMIM` model.

Each refuses, with one line naming the setting and the fix, a model or a
checkpoint that would otherwise fail deep inside a forward pass or train on
silently wrong targets.
"""
from contextlib import contextmanager
from typing import Optional, Sequence

import torch
from mmpretrain.models.utils.attention import ShiftWindowMSA
from torch import nn


def check_input_size(model: nn.Module, input_size: Sequence[int]) -> None:
    """Raise ValueError unless ``model`` can pre-train at this size.

    Runs one dry forward pass of a 1 x 3 x H x W zero image through the
    backbone and the neck, in eval mode and without gradients.
    """
    H, W = input_size
    mask_patch_size = model.mask_patch_size
    target_generator = model.target_generator
    target_generator.check_mask_patch_size(mask_patch_size)
    grid = model.mask_generator.grid(H, W)
    with torch.no_grad(), _eval_mode(model), _windows_must_tile(model):
        x = torch.zeros(1, 3, H, W, device=next(model.parameters()).device)
        pred = model.neck(model.backbone(x))
    num_tokens = pred.shape[1] if pred.dim() == 3 else None
    check_grid(num_tokens, (H, W), grid, mask_patch_size)
    expected = target_generator.dims_per_block(mask_patch_size)
    if pred.shape[2] != expected:
        raise ValueError(
            f'neck.out_channels={pred.shape[2]} does not match the '
            f'{type(target_generator).__name__} target of {expected} values '
            f'per {mask_patch_size}-pixel block: set '
            f'neck.out_channels={expected}.')


def check_grid(num_tokens: Optional[int], size: Sequence[int],
               grid: Sequence[int], mask_patch_size: int) -> None:
    """Raise ValueError unless the neck gave one token per mask block."""
    if num_tokens == grid[0] * grid[1]:
        return
    stride = (f' (the backbone\'s output stride is '
              f'{(size[0] * size[1] / num_tokens)**0.5:g} px)'
              if num_tokens else '')
    raise ValueError(
        f'at input {size[0]}x{size[1]} the neck produced {num_tokens} '
        f'tokens, but the mask grid of mask_generator.mask_patch_size='
        f'{mask_patch_size} has {grid[0]}x{grid[1]} blocks{stride}. Set '
        f'mask_patch_size to the backbone\'s output stride (16 for '
        f'ViT-B/16, 32 for Swin and ResNet), or set the neck\'s '
        f'num_prefix_tokens to the number of class tokens.')


def check_checkpoint(model: nn.Module, state_dict: dict) -> None:
    """Raise ValueError if a FastMIM checkpoint has another architecture.

    Position embeddings may differ in size (they are resized on load);
    every other tensor must exist on both sides with the same shape.
    """
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {
        k: tuple(v.shape)
        for k, v in state_dict.items() if hasattr(v, 'shape')
    }
    shapes = [
        f'{k}: checkpoint {theirs[k]} vs model {own[k]}' for k in own
        if k in theirs and own[k] != theirs[k] and not k.endswith('pos_embed')
    ]
    missing = [k for k in own if k not in theirs]
    unexpected = [k for k in theirs if k not in own]
    if not (shapes or missing or unexpected):
        return
    parts = []
    for what, items in (('differ in shape',
                         shapes), ('are missing from the checkpoint', missing),
                        ('are in the checkpoint only', unexpected)):
        if items:
            parts.append(f'{len(items)} tensors {what} (first: {items[0]})')
    raise ValueError(
        'the checkpoint does not fit the FastMIM model built from the '
        'config: ' + '; '.join(parts) + '. It was pre-trained with '
        'another architecture: set model.backbone and model.neck as in '
        'the config it was trained with (saved in the checkpoint under '
        "meta['cfg']). To reuse only its encoder, load it with "
        "init_cfg=dict(type='Pretrained', checkpoint=..., "
        "prefix='backbone.') on the backbone.")


def check_checkpoint_on_load(model: nn.Module, state_dict: dict, prefix: str,
                             *args) -> None:
    """Load-state-dict pre-hook running :func:`check_checkpoint`.

    Register it with ``model.register_load_state_dict_pre_hook``. It checks
    only a whole checkpoint (``prefix`` empty), which it sees before any
    child module loads a tensor.
    """
    if prefix == '':
        check_checkpoint(model, state_dict)


@contextmanager
def _eval_mode(module: nn.Module):
    """Run without touching BatchNorm statistics, then restore the mode."""
    training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(training)


@contextmanager
def _windows_must_tile(model: nn.Module):
    """Refuse feature maps that the model's window attention cannot tile.

    Hooks every ``ShiftWindowMSA`` of ``model`` for the duration, then
    removes the hooks.
    """

    def check(module, args):
        H, W = args[1]
        ws = module.window_size
        if H % ws or W % ws:
            raise ValueError(
                f'a Swin stage sees a {H}x{W} token map, which window size '
                f'{ws} does not tile: choose an input size whose stage maps '
                f'(input / patch size / 2**stage) are multiples of the '
                f'window (e.g. a multiple of {ws * 32} px for window {ws}), '
                f'or change backbone.stage_cfgs.block_cfgs.window_size.')

    handles = [
        m.register_forward_pre_hook(check) for m in model.modules()
        if isinstance(m, ShiftWindowMSA)
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
