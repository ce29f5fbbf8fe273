"""The image size a data pipeline produces, checked against the model's.

FastMIM's ``input_size`` is the size the model was checked for (mask grid,
window tiling); the crop in the train pipeline decides what it gets. If
only one of them is changed, a ViT trains at another resolution than its
position embedding unnoticed and a Swin fails deep in its window padding.
"""
from typing import Optional, Sequence, Tuple

from mmengine.config import Config

# Transforms whose output size is an argument (every crop this toolkit
# registers among them), and that argument's order.
_HW_SIZE = {
    'RandomResizedCrop': 'scale',
    'DecodeRandomResizedCrop': 'scale',
    'DeviceDecodeRandomResizedCrop': 'scale',
    'EfficientNetRandomCrop': 'scale',
    'CenterCrop': 'crop_size',
    'RandomCrop': 'crop_size',
}
_WH_SIZE = {'Resize': 'scale'}  # MMCV's (w, h)


def _arg(transform, name):
    if isinstance(transform, dict):
        return transform.get(name)
    return getattr(transform, name, None)


def _pair(value, wh: bool) -> Optional[Tuple[int, int]]:
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, int) for v in value):
        return (value[1], value[0]) if wh else (value[0], value[1])
    return None


def pipeline_output_size(transforms: Sequence):
    """(H, W) the pipeline's last size-setting transform produces, and a
    description of it, or ``(None, None)`` where no transform fixes it.

    Args:
        transforms (Sequence): Transform configs or built transforms.
    """
    size, source = None, None
    for t in transforms:
        kind = t.get('type') if isinstance(t, dict) else type(t).__name__
        if not isinstance(kind, str):
            continue
        kind = kind.split('.')[-1]
        if kind in _HW_SIZE or kind in _WH_SIZE:
            arg = _HW_SIZE.get(kind) or _WH_SIZE[kind]
            value = _arg(t, arg)
            keeps_ratio = kind == 'Resize' and _arg(t, 'keep_ratio')
            size = None if keeps_ratio else _pair(value, kind in _WH_SIZE)
            source = f'{kind} {arg}={value}' if size else None
    return size, source


def train_pipeline(cfg: Config) -> Optional[list]:
    """The train data loader's pipeline, inside any dataset wrappers."""
    dataset = cfg.get('train_dataloader', {}).get('dataset', {})
    while isinstance(dataset, dict) and 'pipeline' not in dataset:
        dataset = dataset.get('dataset')
    return dataset.get('pipeline') if isinstance(dataset, dict) else None


def check_pretrain_input_size(cfg: Config) -> None:
    """Raise ValueError if the train pipeline's output size differs from
    ``model.input_size`` (with a ``ProgressiveResolutionHook``, the hook
    checks its phases instead)."""
    input_size = cfg.get('model', {}).get('input_size')
    pipeline = train_pipeline(cfg)
    hooks = [
        str(h.get('type')).split('.')[-1]
        if isinstance(h, dict) else type(h).__name__
        for h in cfg.get('custom_hooks') or []
    ]
    if input_size is None or not pipeline or \
            'ProgressiveResolutionHook' in hooks:
        return
    expected = _pair(input_size, wh=False)
    size, source = pipeline_output_size(pipeline)
    if size is None or expected is None or size == expected:
        return
    h, w = size
    side = h if h == w else f'({h}, {w})'
    raise ValueError(
        f'the train pipeline makes {h}x{w} px images ({source}), but '
        f'model.input_size={input_size}: set model.input_size={side} (and '
        f'model.backbone.img_size={side}), or set the crop to '
        f'{input_size} px.')
