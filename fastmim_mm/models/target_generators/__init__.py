from .base import DenseTargetGenerator, blockify, unblockify
from .hog import FastMIMHOGGenerator
from .pixel import FastMIMPixelGenerator

__all__ = [
    'DenseTargetGenerator', 'blockify', 'unblockify', 'FastMIMHOGGenerator',
    'FastMIMPixelGenerator'
]
