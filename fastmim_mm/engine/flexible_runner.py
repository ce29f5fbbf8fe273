"""MMEngine's FlexibleRunner with the toolkit's run features, for the
configs that shard the model with FSDP (``runner_type``)."""
import torch
from mmengine.dist import all_reduce
from mmengine.registry import RUNNERS
from mmengine.runner import FlexibleRunner
from torch.distributed.fsdp import FullyShardedDataParallel

from .runner import FastMIMRunnerMixin, RunConsole


@RUNNERS.register_module()
class FastMIMFlexibleRunner(FastMIMRunnerMixin, FlexibleRunner):
    """A FlexibleRunner (a ``strategy`` builds, wraps and checkpoints the
    model) with what :class:`~fastmim_mm.engine.FastMIMRunner` gives the
    toolkit's runs: checked loads of ``load_from`` and ``--resume``, a
    short console, the one-line summary of what was built (parameters
    counted over the shards) and ``default_hooks`` entries set to None
    left out.

    With :class:`~fastmim_mm.engine.FastMIMFSDPStrategy` the toolkit's
    hooks work as under DDP: the random streams of every process and the
    position inside an epoch go into each checkpoint
    (``RandomStateHook``, ``ResumableCheckpointHook``), a stop signal saves
    the iteration (``PreemptionHook``), a non-finite loss stops every
    process (``NonFiniteLossHook``) and FastMIM-P changes input size,
    batch and gradient accumulation (``ProgressiveResolutionHook``).
    ``compile`` is refused: the strategy would compile the whole
    ``train_step``, which fails.
    """

    def __init__(self, *args, cfg=None, **kwargs) -> None:
        if cfg is not None and cfg.get('compile'):
            raise ValueError(
                f'compile (--compile) is not supported with runner_type='
                f'{type(self).__name__} (FSDP): leave it out.')
        super().__init__(*args, cfg=cfg, **kwargs)

    def build_strategy(self, *args, **kwargs):
        strategy = super().build_strategy(*args, **kwargs)
        RunConsole.install().attach(strategy.logger)
        return strategy

    def save_checkpoint(self, out_dir, filename, *args, meta=None, **kwargs):
        # FlexibleRunner sets meta's epoch and iter from by_epoch, over the
        # caller's (Runner keeps them): a checkpoint inside an epoch
        # (ResumableCheckpointHook's) has those of by_epoch=False.
        if meta is not None and (meta.get('epoch'),
                                 meta.get('iter')) == (self.epoch,
                                                       self.iter + 1):
            kwargs['by_epoch'] = False
        super().save_checkpoint(out_dir, filename, *args, meta=meta, **kwargs)

    def _parameter_counts(self, model) -> tuple:
        counts = torch.tensor(super()._parameter_counts(model))
        if isinstance(self.model, FullyShardedDataParallel):
            all_reduce(counts)  # each process holds its shard
        return tuple(counts.tolist())
