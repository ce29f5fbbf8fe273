import copy
import math
from contextlib import nullcontext
from typing import Optional, Sequence, Union

from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS
from torch.distributed.fsdp import FullyShardedDataParallel

from ...compat import private_api
from ..input_size import pipeline_output_size
from .resumable_checkpoint_hook import samples_trained_in_epoch

PhaseSpec = Union[dict, Sequence[int]]


@HOOKS.register_module()
class ProgressiveResolutionHook(Hook):
    """FastMIM-P: change input size, batch and accumulation during training.

    Each phase is ``(start_epoch, input_size, batch_size,
    accumulative_counts)`` (or a dict with these keys); ``batch_size`` is
    per GPU. At the start of a
    phase the hook

    - sets the output size of the crop transforms in the train pipeline
      (before training it checks that, for every phase, the pipeline's
      output then has the phase's size: no later transform resizes),
    - rebuilds the train dataloader with the phase's batch size (fresh
      workers also pick up the new crop size),
    - sets the optimiser wrapper's gradient accumulation,
    - re-derives the learning rate from the effective batch:
      ``lr = lr_in_config * batch * accumulation * world_size /
      base_batch_size``. The config's lr is therefore the lr per
      ``base_batch_size`` images; do not enable ``auto_scale_lr`` too.

    The mask block size stays fixed, so the mask grid grows with the input
    (one block per token of the backbone's last feature at every size).
    The applied lr factor lives in the message hub, so ``--resume`` in the
    middle of any phase restores that phase. Iterations per epoch change
    between phases, so the lr schedule must be stepped per epoch
    (``convert_to_iter_based=False``).

    Args:
        phases (list): The phases, sorted by start epoch, the first at 0.
        base_batch_size (int): Batch the config's lr refers to.
            Defaults to 256.
        crop_types (tuple[str]): Class names of the transforms whose
            ``scale`` is the output size. Defaults to
            ``('RandomResizedCrop', 'DecodeRandomResizedCrop',
            'DeviceDecodeRandomResizedCrop')``.
    """

    priority = 'ABOVE_NORMAL'  # the new sampler must get its epoch set after
    _lr_scale_key = 'progressive_resolution_lr_scale'

    def __init__(
        self,
        phases: Sequence[PhaseSpec],
        base_batch_size: int = 256,
        crop_types: Sequence[str] = ('RandomResizedCrop',
                                     'DecodeRandomResizedCrop',
                                     'DeviceDecodeRandomResizedCrop')
    ) -> None:
        keys = ('start_epoch', 'input_size', 'batch_size',
                'accumulative_counts')
        self.phases = []
        for i, phase in enumerate(phases):
            if not isinstance(phase, dict):
                if len(phase) != 4:
                    raise ValueError(
                        f'ProgressiveResolutionHook phase {i} is {phase}: '
                        f'give (start_epoch, input_size, batch_size, '
                        f'accumulative_counts).')
                phase = dict(zip(keys, phase))
            if set(phase) != set(keys):
                raise ValueError(f'ProgressiveResolutionHook phase {i} needs '
                                 f'exactly the keys {keys}, got {phase}.')
            if min(phase['input_size'], phase['batch_size'],
                   phase['accumulative_counts']) < 1:
                raise ValueError(f'ProgressiveResolutionHook phase {i}: '
                                 f'sizes and counts must be positive.')
            self.phases.append(dict(phase))
        starts = [p['start_epoch'] for p in self.phases]
        if not starts or starts[0] != 0 or any(
                a >= b for a, b in zip(starts, starts[1:])):
            raise ValueError(
                f'ProgressiveResolutionHook phases start at epochs {starts}: '
                f'they must be strictly increasing and the first must be 0.')
        self.base_batch_size = base_batch_size
        self.crop_types = tuple(crop_types)
        self._current: Optional[int] = None
        # Samples of the current epoch trained on before a checkpoint saved
        # inside it, over all processes (None: resumed at an epoch's start).
        self._consumed: Optional[int] = None

    def phase_index(self, epoch: int) -> int:
        return max(i for i, p in enumerate(self.phases)
                   if p['start_epoch'] <= epoch)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._consumed = samples_trained_in_epoch(checkpoint)

    def before_train(self, runner) -> None:
        if runner.cfg.get('auto_scale_lr', {}).get('enable', False):
            raise ValueError(
                'ProgressiveResolutionHook scales the lr itself: disable '
                'auto_scale_lr (do not pass --auto-scale-lr).')
        for scheduler in self._schedulers(runner):
            if not scheduler.by_epoch:
                raise ValueError(
                    f'{type(scheduler).__name__} steps per iteration, but '
                    f'ProgressiveResolutionHook changes the iterations per '
                    f'epoch: set convert_to_iter_based=False in '
                    f'param_scheduler.')
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        # FSDP: every process gathers the whole model for the dry runs.
        whole = FullyShardedDataParallel.summon_full_params(
            runner.model, writeback=False) if isinstance(
                runner.model, FullyShardedDataParallel) else nullcontext()
        with whole:
            for i, phase in enumerate(self.phases):
                if not hasattr(model, 'check_input_size'):
                    break
                try:
                    model.check_input_size((phase['input_size'], ) * 2)
                except ValueError as e:
                    raise ValueError(
                        f'ProgressiveResolutionHook phase {i} (input_size='
                        f'{phase["input_size"]}) does not fit the model: '
                        f'{e}') from e
        for index in range(len(self.phases)):
            self._set_crop(runner, index)
        self._apply(runner, self.phase_index(runner.epoch))
        self._consumed = None

    def before_train_epoch(self, runner) -> None:
        index = self.phase_index(runner.epoch)
        if index != self._current:
            self._apply(runner, index)

    def _set_crop(self, runner, index: int) -> None:
        size = self.phases[index]['input_size']
        for t in self._crop_transforms(runner):
            t.scale = (size, size)
        out, source = pipeline_output_size(self._pipeline(runner))
        if out is not None and out != (size, size):
            raise ValueError(
                f'ProgressiveResolutionHook phase {index} crops to {size} '
                f'px, but the train pipeline then makes {out[0]}x{out[1]} '
                f'px images ({source}): remove that transform, or add its '
                f'type to the hook\'s crop_types.')

    def _apply(self, runner, index: int) -> None:
        phase = self.phases[index]
        size = phase['input_size']
        self._set_crop(runner, index)

        loop = runner.train_loop
        cfg = copy.deepcopy(runner.cfg.train_dataloader)
        cfg['dataset'] = loop.dataloader.dataset
        cfg['batch_size'] = phase['batch_size']
        loop.dataloader = runner.build_dataloader(
            cfg,
            seed=runner.seed,
            diff_rank_seed=private_api.runner_randomness(runner).get(
                'diff_rank_seed', False))
        private_api.set_max_iters(
            loop, runner.iter + self._remaining_iters(
                runner, len(loop.dataloader.sampler),
                cfg.get('batch_sampler', {}).get('drop_last', False)))

        optim_wrapper = runner.optim_wrapper
        private_api.set_accumulative_counts(optim_wrapper,
                                            phase['accumulative_counts'])
        optim_wrapper.initialize_count_status(runner.model, runner.iter,
                                              loop.max_iters)

        total = (
            phase['batch_size'] * phase['accumulative_counts'] *
            get_world_size())
        new_scale = total / self.base_batch_size
        old_scale = runner.message_hub.get_info(self._lr_scale_key, 1.0)
        self._scale_lr(runner, new_scale / old_scale)
        runner.message_hub.update_info(self._lr_scale_key, new_scale)
        self._current = index
        runner.logger.info(
            f'ProgressiveResolutionHook: phase {index} from epoch '
            f'{runner.epoch}: input {size}px, batch {phase["batch_size"]} x '
            f'{phase["accumulative_counts"]} accumulation x '
            f'{get_world_size()} processes = {total}, lr x{new_scale:g} of '
            f'the config lr, {len(loop.dataloader)} iterations per epoch.')

    def _remaining_iters(self, runner, samples_per_rank: int,
                         drop_last: bool) -> int:
        total = 0
        for epoch in range(runner.epoch, runner.max_epochs):
            batch = self.phases[self.phase_index(epoch)]['batch_size']
            samples = samples_per_rank
            if epoch == runner.epoch and self._consumed:
                # Resumed inside this epoch: its sampler leaves out what
                # was trained on (ResumableCheckpointHook).
                samples -= self._consumed // get_world_size()
            total += samples // batch if drop_last else math.ceil(samples /
                                                                  batch)
        return total

    @staticmethod
    def _pipeline(runner) -> list:
        dataset = runner.train_loop.dataloader.dataset
        return getattr(getattr(dataset, 'pipeline', None), 'transforms', [])

    def _crop_transforms(self, runner) -> list:
        found = [
            t for t in self._pipeline(runner)
            if type(t).__name__ in self.crop_types
        ]
        if not found:
            raise ValueError(
                f'ProgressiveResolutionHook found no transform of type '
                f'{self.crop_types} in the train pipeline: '
                f'add one, or name the crop transform in crop_types.')
        return found

    @staticmethod
    def _schedulers(runner) -> list:
        schedulers = runner.param_schedulers or []
        if isinstance(schedulers, dict):
            schedulers = [s for group in schedulers.values() for s in group]
        return list(schedulers)

    def _scale_lr(self, runner, factor: float) -> None:
        if factor == 1.0:
            return
        for group in runner.optim_wrapper.param_groups:
            group['lr'] *= factor
            if 'initial_lr' in group:
                group['initial_lr'] *= factor
        for scheduler in self._schedulers(runner):
            if scheduler.param_name != 'lr':
                continue
            scheduler.base_values = [v * factor for v in scheduler.base_values]
            if isinstance(getattr(scheduler, 'eta_min', None), float):
                scheduler.eta_min *= factor
