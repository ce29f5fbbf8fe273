"""The input-size check knows every crop transform the toolkit registers,
so every pre-training config, the GPU-decode one included, is checked."""
import inspect

import pytest
from mmengine.config import Config
from mmpretrain.registry import TRANSFORMS

from fastmim_mm.engine.input_size import (_HW_SIZE, check_pretrain_input_size,
                                          pipeline_output_size)
from ..conftest import CONFIG_DIR


def _toolkit_crops():
    return sorted(
        name for name, cls in TRANSFORMS.module_dict.items()
        if cls.__module__.startswith('fastmim_mm.') and 'Crop' in name)


def test_every_registered_crop_is_in_the_table():
    crops = _toolkit_crops()
    assert crops == [
        'DecodeRandomResizedCrop', 'DeviceDecodeRandomResizedCrop'
    ]
    for name in crops:
        assert _HW_SIZE[name] in inspect.signature(
            TRANSFORMS.get(name)).parameters


@pytest.mark.parametrize('name', [
    'fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px.py',
    'fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px_gpu-decode.py',
])
def test_pretrain_configs_are_checked(name):
    cfg = Config.fromfile(str(CONFIG_DIR / 'fastmim' / name))
    pipeline = cfg.train_dataloader.dataset.dataset.pipeline
    assert pipeline_output_size(pipeline)[0] == (128, 128)
    check_pretrain_input_size(cfg)
    cfg.model.input_size = 224
    crop = pipeline[0].type
    with pytest.raises(
            ValueError,
            match=rf'makes 128x128 px images \({crop} scale=128\), but '
            r'model.input_size=224'):
        check_pretrain_input_size(cfg)
