from .decode_crop import DecodeRandomResizedCrop
from .loading import BrokenImageError, SafeLoadImageFromFile

__all__ = [
    'BrokenImageError', 'DecodeRandomResizedCrop', 'SafeLoadImageFromFile'
]
