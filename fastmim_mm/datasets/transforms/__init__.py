from .loading import BrokenImageError, SafeLoadImageFromFile

__all__ = ['BrokenImageError', 'SafeLoadImageFromFile']
