from .progressive_resolution_hook import ProgressiveResolutionHook
from .reconstruction_hook import FastMIMReconstructionHook

__all__ = ['ProgressiveResolutionHook', 'FastMIMReconstructionHook']
