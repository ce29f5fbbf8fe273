from .beit_vit import FastMIMBEiTViT
from .fastmim_vit import FastMIMViT

__all__ = ['FastMIMBEiTViT', 'FastMIMViT']
