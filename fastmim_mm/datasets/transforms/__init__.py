from .decode_crop import DecodeRandomResizedCrop
from .device_decode import DeviceDecodeRandomResizedCrop
from .loading import BrokenImageError, SafeLoadImageFromFile

__all__ = [
    'BrokenImageError', 'DecodeRandomResizedCrop',
    'DeviceDecodeRandomResizedCrop', 'SafeLoadImageFromFile'
]
