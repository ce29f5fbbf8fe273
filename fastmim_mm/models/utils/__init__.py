from .mask_generator import FastMIMMaskGenerator

__all__ = ['FastMIMMaskGenerator']
