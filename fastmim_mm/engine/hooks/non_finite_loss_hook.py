import math

from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training at the first NaN or Inf loss.

    Raises ``FloatingPointError`` naming the iteration and every loss term,
    before the checkpoint hook could save the broken weights, so the last
    checkpoint on disk stays the last good one.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if not outputs:
            return
        terms = {
            k: float(v.detach()) if hasattr(v, 'detach') else float(v)
            for k, v in outputs.items()
        }
        if all(math.isfinite(v) for v in terms.values()):
            return
        listed = ', '.join(f'{k}={v:g}' for k, v in terms.items())
        last = runner.message_hub.get_info('last_ckpt')
        resume = (f'the last checkpoint is {last}' if last else
                  'no checkpoint has been saved yet')
        raise FloatingPointError(
            f'non-finite loss at iteration {runner.iter + 1} (epoch '
            f'{runner.epoch + 1}): {listed}. Training stopped without '
            f'saving this state; {resume}. Lower the learning rate, enable '
            f'gradient clipping (optim_wrapper.clip_grad) or check the data, '
            f'then resume.')
