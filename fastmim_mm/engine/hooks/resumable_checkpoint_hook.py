import os.path as osp
from collections import deque
from typing import Optional

import torch
from mmengine.dist import get_world_size, is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import HOOKS

from ..fileio import AtomicLocalBackend


def _batch_length(data_batch, loader) -> int:
    """How many samples one process trained on in this iteration."""
    inputs = data_batch.get('inputs') if isinstance(data_batch,
                                                    dict) else data_batch
    try:
        return len(inputs)
    except TypeError:
        return loader.batch_size


def gradients_applied(runner) -> bool:
    """Whether the optimiser stepped at the iteration just trained: the end
    of a gradient accumulation window, where a checkpoint holds the whole
    state (the gradients accumulated inside a window are in none)."""
    should_update = getattr(runner.optim_wrapper, 'should_update', None)
    return should_update is None or should_update()


# Checkpoint meta of a checkpoint saved inside an epoch: the samples of the
# epoch's order trained on (per process) and the number of processes.
EPOCH_PROGRESS_KEY = 'epoch_progress'


def samples_trained_in_epoch(checkpoint: dict) -> Optional[int]:
    """Samples of its epoch's order trained on, over all processes,
    before ``checkpoint`` was saved inside that epoch; None for a checkpoint
    saved at an epoch's end."""
    progress = checkpoint.get('meta', {}).get(EPOCH_PROGRESS_KEY)
    return None if progress is None else \
        progress['samples'] * progress['world_size']


@HOOKS.register_module()
class ResumableCheckpointHook(CheckpointHook):
    """MMEngine's ``CheckpointHook`` whose checkpoints resume where they were
    taken, inside an epoch too, and whose saves never leave the work dir
    without a complete checkpoint to resume from.

    - Besides its schedule (per epoch, as ``CheckpointHook``), it can save
      every ``iter_interval`` iterations inside epochs (``iter_{n}.pth``,
      the newest ``max_keep_iter_ckpts`` kept; with gradient accumulation,
      at the end of the window that iteration falls in), and saves when
      asked (:meth:`save_iteration`; :class:`PreemptionHook` does on a
      stop signal).
    - A checkpoint taken inside an epoch records in
      ``meta['epoch_progress']`` how many samples each process had trained
      on in it. A run resumed from it continues that epoch at the next
      iteration: the train sampler leaves those samples out (it needs a
      ``resume_at`` method, as :class:`PerSampleSeedSampler` has; another
      sampler replays the epoch from its start, with a warning), and the
      data loader's start does not draw from the global random stream, as
      it had already drawn before the checkpoint. ``RandomStateHook``
      restores the streams and the optimiser and lr schedule come back
      with the checkpoint, so the resumed run repeats the uninterrupted
      one. In the epoch resumed inside, ``Epoch [e][i/n]`` log lines count
      the iterations left.
    - ``last_checkpoint`` is written atomically (a temporary file renamed
      over it), and checkpoints beyond ``max_keep_ckpts`` are removed only
      after the new one and ``last_checkpoint`` are written: a save that
      fails leaves the previous checkpoint and ``last_checkpoint`` intact.
      (The checkpoint itself is written atomically by the ``atomic_local``
      backend the configs name in ``backend_args``.)
    - Before each save it calls ``before_save_checkpoint_all_ranks(runner)``
      on the runner's hooks in every process (MMEngine's
      ``before_save_checkpoint`` runs in rank 0 only), for hooks that gather
      per-process state into the checkpoint, as ``RandomStateHook`` does.

    Args:
        iter_interval (int, optional): Also save every ``iter_interval``
            iterations inside epochs; needs ``by_epoch=True``. None saves
            per epoch only. Defaults to None.
        max_keep_iter_ckpts (int): How many of the checkpoints taken inside
            epochs to keep; -1 keeps all. Defaults to 1.
        **kwargs: The arguments of ``CheckpointHook``.
    """

    _iter_keep_key = 'keep_iter_ckpt_ids'

    def __init__(self,
                 iter_interval: Optional[int] = None,
                 max_keep_iter_ckpts: int = 1,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if iter_interval is not None:
            if not self.by_epoch:
                raise ValueError(
                    'ResumableCheckpointHook: iter_interval adds checkpoints '
                    'inside epochs to the per-epoch ones (by_epoch=True); '
                    'with by_epoch=False set interval instead.')
            if iter_interval < 1:
                raise ValueError(
                    f'ResumableCheckpointHook: iter_interval must be a '
                    f'positive number of iterations, or None; got '
                    f'{iter_interval}.')
        self.iter_interval = iter_interval
        self.max_keep_iter_ckpts = max_keep_iter_ckpts
        self.keep_ckpt_ids: deque = deque()  # CheckpointHook's, if kept
        self.keep_iter_ckpt_ids: deque = deque()
        self._consumed = 0  # samples this process trained on in the epoch
        # samples_trained_in_epoch of the checkpoint resumed
        self._progress: Optional[int] = None
        self._saved_iter: Optional[int] = None
        self._iter_save_due = False
        self._loader_generator_set = None

    # Resume -------------------------------------------------------------

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._progress = samples_trained_in_epoch(checkpoint)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if runner.iter == 0:  # a new run, or weights loaded for one
            self._progress = None
        if self.by_epoch:
            kept = list(runner.message_hub.get_info(self._iter_keep_key, []))
            if self.max_keep_iter_ckpts > 0:
                while len(kept) > self.max_keep_iter_ckpts:
                    self._remove(f'iter_{kept.pop(0)}.pth')
            self.keep_iter_ckpt_ids = deque(kept)
        sampler = runner.train_dataloader.sampler
        if self.iter_interval and not hasattr(sampler, 'resume_at'):
            raise ValueError(
                f'default_hooks.checkpoint.iter_interval saves inside '
                f'epochs, but the train sampler {type(sampler).__name__} '
                f'cannot continue an epoch where it stopped: use '
                f"train_dataloader.sampler=dict(type='PerSampleSeedSampler')"
                f' (with the PerSampleSeedDataset wrapper), or set '
                f'iter_interval=None.')

    def before_train_epoch(self, runner) -> None:
        self._consumed = 0
        total, self._progress = self._progress, None
        if total is None or not isinstance(runner.train_loop,
                                           EpochBasedTrainLoop):
            return
        loader = runner.train_loop.dataloader
        sampler = loader.sampler
        if not hasattr(sampler, 'resume_at'):
            runner.logger.warning(
                f'The checkpoint was saved inside epoch {runner.epoch + 1}, '
                f'but the train sampler {type(sampler).__name__} cannot '
                f'leave out the samples trained on: the epoch is replayed '
                f'from its start.')
            return
        # Each process leaves out its share of what was trained on.
        consumed = total // get_world_size()
        sampler.resume_at(runner.epoch, consumed)
        self._consumed = consumed
        if loader.generator is None:
            loader.generator = torch.Generator()
            self._loader_generator_set = loader
        runner.logger.info(
            f'Resuming inside epoch {runner.epoch + 1}: {total} samples of '
            f'it were trained on before iteration {runner.iter}; '
            f'{len(loader)} iterations left in this epoch.')

    def after_train_epoch(self, runner) -> None:
        if self._loader_generator_set is not None:
            self._loader_generator_set.generator = None
            self._loader_generator_set = None
        if self.by_epoch and self._epoch_save_due(runner):
            runner.logger.info(
                f'Saving checkpoint at {runner.epoch + 1} epochs')
            self._save(runner, runner.epoch + 1,
                       dict(epoch=runner.epoch + 1, iter=runner.iter),
                       self.filename_tmpl, self.keep_ckpt_ids,
                       self.max_keep_ckpts, 'keep_ckpt_ids')

    # Saves --------------------------------------------------------------

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        self._consumed += _batch_length(data_batch, runner.train_dataloader)
        if self._iteration_save_due(runner, batch_idx):
            runner.logger.info(
                f'Saving checkpoint at {runner.iter + 1} iterations')
            self.save_iteration(runner)

    def _iteration_save_due(self, runner, batch_idx: int) -> bool:
        if not self.by_epoch:  # CheckpointHook's schedule
            return self.every_n_train_iters(
                runner, self.interval,
                self.save_begin) or (self.save_last
                                     and self.is_last_train_iter(runner))
        if self.iter_interval and self.every_n_train_iters(
                runner, self.iter_interval):
            self._iter_save_due = True
        if not (self._iter_save_due and gradients_applied(runner)):
            return False
        self._iter_save_due = False
        # At the end of an epoch whose checkpoint is due, that one follows.
        return not (self.end_of_epoch(runner.train_dataloader, batch_idx)
                    and self._epoch_save_due(runner))

    def save_iteration(self, runner) -> str:
        """Save the checkpoint of the iteration just trained, unless this
        hook saved it already; every process calls it, after the
        iteration. Returns the checkpoint's path."""
        if self._saved_iter == runner.iter:
            return self.last_ckpt
        self._saved_iter = runner.iter
        meta = dict(epoch=runner.epoch, iter=runner.iter + 1)
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            meta[EPOCH_PROGRESS_KEY] = dict(
                samples=self._consumed, world_size=get_world_size())
        if self.by_epoch:
            return self._save(runner, runner.iter + 1, meta, 'iter_{}.pth',
                              self.keep_iter_ckpt_ids,
                              self.max_keep_iter_ckpts, self._iter_keep_key)
        return self._save(runner, runner.iter + 1, meta, self.filename_tmpl,
                          self.keep_ckpt_ids, self.max_keep_ckpts,
                          'keep_ckpt_ids')

    def _epoch_save_due(self, runner) -> bool:
        return self.every_n_epochs(runner, self.interval, self.save_begin) or (
            self.save_last and self.is_last_train_epoch(runner))

    def _save(self, runner, step: int, meta: dict, filename_tmpl: str,
              keep: deque, max_keep: int, keep_key: str) -> str:
        runner.call_hook('before_save_checkpoint_all_ranks')
        filename = filename_tmpl.format(step)
        path = self.file_backend.join_path(self.out_dir, filename)
        # The list saved with the checkpoint names it; the files it drops
        # are removed once the new checkpoint is safely written.
        dropped = []
        if max_keep > 0 and (not keep or keep[-1] != step):
            while len(keep) >= max_keep:
                dropped.append(keep.popleft())
            keep.append(step)
            runner.message_hub.update_info(keep_key, list(keep))
        self.last_ckpt = path
        runner.message_hub.update_info('last_ckpt', path)
        runner.save_checkpoint(
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if is_main_process():
            AtomicLocalBackend().put_text(
                path, osp.join(runner.work_dir, 'last_checkpoint'))
            for old in dropped:
                self._remove(filename_tmpl.format(old))
        return path

    def _remove(self, filename: str) -> None:
        if not is_main_process():
            return
        path = self.file_backend.join_path(self.out_dir, filename)
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):
            self.file_backend.rmtree(path)
