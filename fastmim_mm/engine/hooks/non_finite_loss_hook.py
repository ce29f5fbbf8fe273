import math

import torch
from mmengine.dist import all_gather, get_rank, get_world_size
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training at the first NaN or Inf loss, in every process at once.

    Raises ``FloatingPointError`` naming the iteration, the processes whose
    loss was not finite and this process's loss terms, before the checkpoint
    hook could save the broken weights, so the last checkpoint on disk stays
    the last good one.

    With several processes the verdict is shared (one all-gather of a flag
    per iteration): a NaN in one process's loss turns every process's weights
    to NaN at the optimiser step through the averaged gradients, so rank 0
    must stop before saving even when its own loss is finite, and the other
    processes must not wait for a stopped one.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        # Every process must reach the all-gather, with outputs or not.
        terms = {
            k: float(v.detach()) if hasattr(v, 'detach') else float(v)
            for k, v in (outputs or {}).items()
        }
        finite = all(math.isfinite(v) for v in terms.values())
        # One process: all_gather returns the flag as it is, no collective.
        flags = all_gather(torch.tensor([0 if finite else 1]))
        bad = [rank for rank, flag in enumerate(flags) if flag.item()]
        if not bad:
            return
        listed = ', '.join(f'{k}={v:g}' for k, v in terms.items())
        where = ''
        if get_world_size() > 1:
            where = (f' in the process{"es" if len(bad) > 1 else ""} of '
                     f'rank {", ".join(map(str, bad))} (rank {get_rank()} '
                     f'reports its own terms)')
        last = runner.message_hub.get_info('last_ckpt')
        resume = (f'the last checkpoint is {last}'
                  if last else 'no checkpoint has been saved yet')
        raise FloatingPointError(
            f'non-finite loss at iteration {runner.iter + 1} (epoch '
            f'{runner.epoch + 1}){where}: {listed}. Training stopped without '
            f'saving this state; {resume}. Lower the learning rate, enable '
            f'gradient clipping (optim_wrapper.clip_grad) or check the data, '
            f'then resume.')
