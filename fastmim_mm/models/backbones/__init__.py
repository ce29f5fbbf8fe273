from .fastmim_vit import FastMIMViT

__all__ = ['FastMIMViT']
