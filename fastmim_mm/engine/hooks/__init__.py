from .non_finite_loss_hook import NonFiniteLossHook
from .progressive_resolution_hook import ProgressiveResolutionHook
from .random_state_hook import RandomStateHook
from .reconstruction_hook import FastMIMReconstructionHook

__all__ = [
    'NonFiniteLossHook', 'ProgressiveResolutionHook', 'RandomStateHook',
    'FastMIMReconstructionHook'
]
