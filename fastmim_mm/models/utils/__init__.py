from .device_decode_preprocessor import DeviceDecodeDataPreprocessor
from .mask_generator import FastMIMMaskGenerator
from .relative_position import (patch_mmpretrain,
                                resize_relative_position_bias_table)

__all__ = [
    'DeviceDecodeDataPreprocessor', 'FastMIMMaskGenerator', 'patch_mmpretrain',
    'resize_relative_position_bias_table'
]
