from .device_decode_preprocessor import DeviceDecodeDataPreprocessor
from .mask_generator import FastMIMMaskGenerator

__all__ = ['DeviceDecodeDataPreprocessor', 'FastMIMMaskGenerator']
