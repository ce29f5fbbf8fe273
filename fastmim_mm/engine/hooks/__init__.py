from .non_finite_loss_hook import NonFiniteLossHook
from .preemption_hook import PREEMPTED_EXIT_CODE, PreemptionHook
from .progressive_resolution_hook import ProgressiveResolutionHook
from .random_state_hook import RandomStateHook
from .reconstruction_hook import FastMIMReconstructionHook
from .resumable_checkpoint_hook import ResumableCheckpointHook

__all__ = [
    'NonFiniteLossHook', 'PREEMPTED_EXIT_CODE', 'PreemptionHook',
    'ProgressiveResolutionHook', 'RandomStateHook',
    'FastMIMReconstructionHook', 'ResumableCheckpointHook'
]
