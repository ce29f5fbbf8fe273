from .fastmim_head import FastMIMHead

__all__ = ['FastMIMHead']
