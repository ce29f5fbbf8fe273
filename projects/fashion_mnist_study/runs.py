"""The study's runs: its configs with the study's seeds, lengths and data,
built as the toolkit's :class:`FastMIMRunner`, and the hook that records
what each run measured (and lets an interrupted fine-tuning go on)."""
import itertools
import os
import os.path as osp
import time

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

from fastmim_mm.engine import (CheckpointFileError, FastMIMRunner,
                               read_checkpoint)
from fastmim_mm.engine.runner import RunConsole
from .arms import CONFIG_DIR, ROOT
from .console import fail

_builds = itertools.count()


def load_config(name: str, work_dir: str, data_dir: str, seed: int):
    """The study config ``name`` with the run's work dir, seed and data."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    cfg.work_dir = work_dir
    cfg.experiment_name = osp.relpath(work_dir, ROOT).replace(os.sep, '_') \
        + time.strftime('_%Y%m%d_%H%M%S')
    # MMEngine keeps one visualiser per name in a process: one per run, so
    # that each run's scalars go to its own vis_data/scalars.json.
    cfg.visualizer.name = cfg.experiment_name
    cfg.randomness = dict(seed=seed, diff_rank_seed=False)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(key) is not None:
            cfg[key].dataset.data_root = data_dir
    return cfg


def set_iters(cfg: Config, iters: int, val_interval=None) -> None:
    """Set the length of an iteration-based run: the configs' linear
    warm-up keeps its share (at least one iteration), cosine decay the
    rest."""
    warmup, cosine = cfg.param_scheduler
    share = warmup.end / cfg.train_cfg.max_iters
    warm = min(max(1, round(share * iters)), iters - 1)
    warmup.end = warm
    cosine.update(begin=warm, end=iters, T_max=iters - warm)
    cfg.train_cfg.max_iters = iters
    if val_interval is not None:
        cfg.train_cfg.val_interval = val_interval
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = max(1, min(50, iters // 10))


def build_model(cfg: Config, device: str):
    """The config's model, initialised, outside a runner (calibration,
    kNN features, the untrained encoder).

    MMEngine logs each parameter's initialisation to the current logger:
    inside a run, to its log file; here, a logger of its own that shows
    warnings only keeps those hundreds of lines off the console (and out of
    the log file of the run before); its warnings show once, as a run's.
    """
    RunConsole.install().attach(
        MMLogger.get_instance(
            f'fashion_mnist_study_build_{next(_builds)}', log_level='WARNING'))
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.to(device)


class Recorder(Hook):
    """Keeps a run's training time (first to last iteration, data loading
    included, set-up excluded), training loss and validation metric.

    With ``resume_file``, the run is saved there after each validation,
    with what the recorder has kept and the unit's ``settings``, so that an
    interrupted run goes on from there (the iterations it resumed at are
    kept too).

    Args:
        resume_file (str, optional): Where the run is saved after each
            validation. Defaults to None (not saved).
        settings (dict, optional): The unit's settings, saved with the run.
            Defaults to None.
        metric (str): The validation metric of the curve. Defaults to
            'accuracy/top1'.
    """

    priority = 'LOW'

    def __init__(self,
                 resume_file=None,
                 settings=None,
                 metric='accuracy/top1'):
        self.curve = []  # [iteration, metric] per validation
        self.train_seconds = []  # training time before each validation
        self.losses = []
        self.resumed_at = []
        self.seconds = None
        self.val_seconds = 0.  # time spent in validation
        self.earlier = 0.  # seconds spent before a resume
        self.resume_file = resume_file
        self.settings = settings
        self.metric = metric

    def elapsed(self) -> float:
        return self.earlier + time.perf_counter() - self.start

    def before_train(self, runner):
        self.start = time.perf_counter()

    def after_train(self, runner):
        self.seconds = self.elapsed()

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        if outputs and 'loss' in outputs:
            self.losses.append(outputs['loss'].item())

    def before_val(self, runner):
        self.val_start = time.perf_counter()
        self.train_seconds.append(self.elapsed() - self.val_seconds)

    def after_val(self, runner):
        self.val_seconds += time.perf_counter() - self.val_start

    def after_val_epoch(self, runner, metrics=None):
        self.curve.append([runner.iter, float(metrics[self.metric])])
        if self.resume_file:
            # by_epoch=True records runner.iter as it is; by_epoch=False
            # adds one, being meant for after_train_iter.
            folder, name = osp.split(self.resume_file)
            runner.save_checkpoint(folder, name + '.tmp', by_epoch=True)
            os.replace(self.resume_file + '.tmp', self.resume_file)

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint['meta']['study'] = dict(
            settings=self.settings,
            curve=self.curve,
            losses=self.losses,
            seconds=self.elapsed(),
            resumed_at=self.resumed_at)

    def after_load_checkpoint(self, runner, checkpoint):
        saved = checkpoint['meta']['study']
        self.curve, self.losses = saved['curve'], saved['losses']
        self.earlier = saved['seconds']
        self.resumed_at = saved['resumed_at'] + [checkpoint['meta']['iter']]


def build_runner(cfg: Config, recorder: Recorder) -> FastMIMRunner:
    """The runner ``tools/train.py`` builds for ``cfg``, with ``recorder``
    registered."""
    runner = FastMIMRunner.from_cfg(cfg)
    runner.register_hook(recorder)
    return runner


def interrupted_at(resume_file: str, settings: dict):
    """The iteration an interrupted fine-tuning with these settings can go
    on from, or None (a run with other settings is discarded)."""
    if not osp.isfile(resume_file):
        return None
    try:
        meta = read_checkpoint(resume_file)['meta']
    except CheckpointFileError as e:
        fail(f'{e} Delete it to fine-tune this unit from the start.')
    if meta.get('study', {}).get('settings') != settings:
        os.remove(resume_file)
        return None
    return meta['iter']
