from .fastmim_neck import FastMIMNeck

__all__ = ['FastMIMNeck']
