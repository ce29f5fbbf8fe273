"""MMEngine's Runner with checked checkpoint loads, a readable console and
a ``compile`` that trains.

tools/train.py and tools/test.py use it for every config that names no
runner of its own (``runner_type``).
"""
import atexit
import hashlib
import logging
import os
import os.path as osp
import re
import shutil
import sys
import tempfile
import warnings
from contextlib import contextmanager
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper, revert_sync_batchnorm
from mmengine.registry import RUNNERS
from mmengine.runner import BaseLoop, Runner, find_latest_checkpoint

from ..compat import mmcv_ops, private_api
from ..datasets import PerSampleSeedDataset
from .checkpoint_fit import CheckedLoading

# What the stack writes before training starts that a user reads in the log
# file if at all: the config dump, the environment, the hook order, the
# optimiser constructors' per-parameter settings (MMPretrain's
# paramwise_options; MMSegmentation's layer-decay constructor prints a line
# per parameter and a dump of its groups; MMPretrain's names each frozen
# parameter, the fixed position embeddings too), MMEngine's and MMPretrain's
# per-load and per-table lines (the toolkit's "Loaded ..." line sums them
# up), pycocotools' progress, and notices about the stack's own code that a
# user cannot act on. These go to the log file only.
_FILE_ONLY = re.compile('|'.join([
    r'Config:\n', r'paramwise_options -- ', r'\n-{60}\nSystem environment:',
    r'Hooks will be executed in the following order:',
    r'self\.paramwise_cfg is ', r'Build LearningRateDecayOptimizerConstructor',
    r'set param \S+ as id ', r'Param groups = ',
    r'\S+ is skipped since its requires_grad=False',
    r'load (\S+ in )?model from: ', r'Loads checkpoint by \w+ backend',
    r'Resize the relative_position_bias_table from ',
    r'Resize the pos_embed shape from ',
    r'loading annotations into memory\.\.\.$', r'Done \(t=[\d.]+s\)$',
    r'creating index\.\.\.$', r'index created!$',
    r'"FileClient" will be deprecated', r'"HardDiskBackend" is the alias',
    r'The prefix is not set in metric class ',
    r'Failed to search registry with scope "\w+" in the "function" ',
    r'FutureWarning: FSDP\.state_dict_type\(\) and ',
    r'UserWarning: When using ``NO_SHARD`` for ``ShardingStrategy``',
    r'(UserWarning|DeprecationWarning): (pkg_resources is deprecated|'
    r'``build_loss`` would be deprecated|`reduce_zero_label` will be '
    r'deprecated|Default ``avg_non_ignore`` is False|The draw is False)'
]))

_MMENGINE_DEFAULT_HOOKS = ('runtime_info', 'timer', 'sampler_seed', 'logger',
                           'param_scheduler', 'checkpoint')


def _rank() -> int:
    """This process's rank; before torch.distributed starts, the one its
    launcher gave it."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get('RANK', os.environ.get('SLURM_PROCID', 0)))


class _Console(logging.Filter):
    """On the console handler of a run's logger: keeps what ``_FILE_ONLY``
    matches and records logged with ``extra=dict(console=False)`` off the
    console (the log file still gets them), and shows each warning once in
    the process, whichever runner of it logs it (:class:`RunConsole`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        console = getattr(record, 'console', True)
        if not console:
            return False
        message = record.getMessage()
        if _FILE_ONLY.match(message):
            return False
        if record.levelno == logging.WARNING and console != 'noted':
            return RunConsole.install().first_time(message)
        return True


class _Prints:
    """Stands in for ``sys.stdout``: a line a library prints (not logs)
    that ``_FILE_ONLY`` matches goes to the log file instead."""

    def __init__(self, stream, console: 'RunConsole') -> None:
        self._stream = stream
        self._console = console
        self._newline_pending = False  # print() writes the '\n' apart

    def write(self, text: str) -> int:
        if self._newline_pending and text == '\n':
            self._newline_pending = False
            return len(text)
        self._newline_pending = False
        if _FILE_ONLY.match(text):
            self._console.log_only(text.rstrip('\n'))
            self._newline_pending = not text.endswith('\n')
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


class RunConsole:
    """What the console of a toolkit run shows, besides its logger's
    records (see :class:`FastMIMRunner`).

    - A Python warning is one line, ``Category: message (file:line)``,
      shown once per run: in the first process that meets it (rank 0, or
      the process itself without torch.distributed; loader workers show
      theirs once across all of them), whatever Python's filters have
      forgotten in between. Every warning goes to the run's log file.
    - :meth:`note`: a line of the toolkit's own, shown once (rank 0) and
      kept for the log file.
    - Warnings and notes from before the runner's logger exists are written
      into its log file when it does (:meth:`attach`).

    ``tools/train.py`` and ``tools/test.py`` install it for the whole run
    (:meth:`install`), so that what the stack warns while the config is
    read counts too; :class:`FastMIMRunner` installs it when its logger is
    built if nothing has. It stays for the rest of the process.
    """

    current: Optional['RunConsole'] = None

    def __init__(self) -> None:
        self._shown = set()
        self._pending = []
        self._logger = None
        self._show_python_warning = warnings.showwarning
        self._worker_marks = None

    @classmethod
    def install(cls) -> 'RunConsole':
        """The process's RunConsole, installed if there is none."""
        if cls.current is None:
            cls.current = cls()
            warnings.showwarning = cls.current.show_warning
        return cls.current

    def attach(self, logger: logging.Logger) -> None:
        """Log to ``logger`` from now on, its console handlers filtered as
        a run's (``_FILE_ONLY``, each warning once); earlier lines go to its
        file."""
        for handler in logger.handlers:
            if not isinstance(handler, logging.FileHandler) and not any(
                    isinstance(f, _Console) for f in handler.filters):
                handler.addFilter(_Console())
        self._logger = logger
        for message, level in self._pending:
            logger.log(level, message, extra=dict(console=False))
        self._pending = []
        if not isinstance(sys.stdout, _Prints):
            sys.stdout = _Prints(sys.stdout, self)
        if self._worker_marks is None:
            self._worker_marks = tempfile.mkdtemp(prefix='fastmim_warnings_')
            atexit.register(shutil.rmtree, self._worker_marks, True)

    def note(self,
             message: str,
             level: int = logging.WARNING,
             key: Optional[str] = None) -> None:
        """Show ``message`` once (rank 0) and keep it for the log file;
        once per ``key`` if given."""
        if not self.first_time(key or message):
            return
        if self._logger is not None:
            self._logger.log(level, message, extra=dict(console='noted'))
            return
        self._pending.append((message, level))
        if _rank() == 0 and not _FILE_ONLY.match(message):
            print(message, file=sys.stderr, flush=True)

    def log_only(self, message: str, level: int = logging.INFO) -> None:
        """``message`` to the log file only."""
        if self._logger is not None:
            self._logger.log(level, message, extra=dict(console=False))
        else:
            self._pending.append((message, level))

    def show_warning(self,
                     message,
                     category,
                     filename,
                     lineno,
                     file=None,
                     line=None) -> None:
        """``warnings.showwarning`` of the run."""
        if file not in (None, sys.stderr):  # written to a file on purpose
            self._show_python_warning(message, category, filename, lineno,
                                      file, line)
            return
        # The same warning from two places (pkg_resources' from each
        # package that imports it) is shown once, with the first place.
        key = f'{category.__name__}: {message}'
        path = filename.split('site-packages' + os.sep)[-1]
        self.note(f'{key} ({path}:{lineno})', key=key)

    def first_time(self, key: str) -> bool:
        """Whether ``key`` is new to this process and, once loader workers
        may exist, to the workers and the process they were forked from (a
        marker file per key, created atomically)."""
        if key in self._shown:
            return False
        self._shown.add(key)
        if self._worker_marks is None:
            return True
        name = hashlib.sha1(key.encode()).hexdigest()
        try:
            os.close(
                os.open(
                    osp.join(self._worker_marks, name),
                    os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True


def _millions(n: int) -> str:
    return f'{n / 1e6:.2f} M'


class FastMIMRunnerMixin:
    """What the toolkit's runners share (:class:`FastMIMRunner`, and
    :class:`~fastmim_mm.engine.FastMIMFlexibleRunner` for FSDP): checked
    loads of ``load_from`` and ``resume``, the mmcv kernel fallback, the
    one-line summary of what was built, and ``default_hooks`` entries set to
    None left out. See :class:`FastMIMRunner` for each."""

    def __init__(self, *args, **kwargs) -> None:
        self._loads_checked = False
        super().__init__(*args, **kwargs)
        if mmcv_ops.apply():
            print_log(
                "mmcv has no CUDA kernels: mmcv's nms and RoIAlign on CUDA "
                "tensors now run torchvision's kernels in this process.",
                logger='current')

    @contextmanager
    def checked_loads(self, resume: bool = False):
        """Check the loads inside the block (see the class description);
        a block inside another adds nothing."""
        if self._loads_checked:
            yield
            return
        self._loads_checked = True
        try:
            with CheckedLoading(resume):
                yield
        finally:
            self._loads_checked = False

    def load_checkpoint(self, *args, **kwargs):
        with self.checked_loads():
            return super().load_checkpoint(*args, **kwargs)

    def resume(self, *args, **kwargs) -> None:
        with self.checked_loads(resume=True):
            super().resume(*args, **kwargs)

    def register_default_hooks(self, hooks=None) -> None:
        # MMEngine takes None only for its own default hooks; here
        # `default_hooks.reconstruction=None` removes the panels too.
        if hooks:
            hooks = {
                name: hook
                for name, hook in hooks.items()
                if hook is not None or name in _MMENGINE_DEFAULT_HOOKS
            }
        super().register_default_hooks(hooks)

    def load_or_resume(self) -> None:
        super().load_or_resume()
        self.logger.info(self.summary())

    def summary(self) -> str:
        """One line: model, parameters, input size, data, weights."""
        model = self._unwrapped_model()
        total, trainable = self._parameter_counts(model)
        parts = [type(model).__name__]
        backbone = getattr(model, 'backbone', None)
        if backbone is not None:
            parts[0] += f' ({type(backbone).__name__} backbone)'
        parts.append(f'{_millions(total)} parameters' +
                     (f' ({_millions(trainable)} trainable)' if trainable !=
                      total else ''))
        size = getattr(model, 'input_size', None)
        if size is not None:
            h, w = (size, size) if isinstance(size, int) else size
            parts.append(f'input {h} px' if h == w else f'input {h}x{w} px')
        data = self._data_summary()
        if data:
            parts.append(data)
        parts.append(f'weights: {self._weights_summary(model)}')
        log_file = getattr(self.logger, 'log_file', None)
        if log_file:
            parts.append(f'config and environment in {log_file}')
        return 'Built ' + '; '.join(parts)

    def _parameter_counts(self, model) -> tuple:
        """(all, trainable) parameters of the model."""
        params = list(model.parameters())
        return (sum(p.numel() for p in params),
                sum(p.numel() for p in params if p.requires_grad))

    def _unwrapped_model(self):
        return self.model.module if is_model_wrapper(
            self.model) else self.model

    def _data_summary(self) -> Optional[str]:
        train_loop, test_loop = private_api.runner_loops(self)
        if isinstance(train_loop, BaseLoop):
            loader, what = train_loop.dataloader, 'train'
            steps = 'iterations per epoch'
        elif isinstance(test_loop, BaseLoop):
            loader, what, steps = test_loop.dataloader, 'test', 'batches'
        else:
            return None
        dataset = loader.dataset
        if isinstance(dataset, PerSampleSeedDataset):
            dataset = dataset.dataset
        root = getattr(dataset, 'data_root', None)
        source = type(dataset).__name__ + (f' in {root}' if root else '')
        processes = 'process' if self.world_size == 1 else 'processes'
        try:
            sizes = f'{len(dataset)} samples ({source}), '
            count = f', {len(loader)} {steps}'
        except TypeError:  # an iterable dataset has no length
            sizes, count = f'{source}, ', ''
        return (f'{what} data: {sizes}batch {loader.batch_size} x '
                f'{self.world_size} {processes}{count}')

    def _weights_summary(self, model) -> str:
        has_loaded, resume, path = private_api.runner_load_settings(self)
        if has_loaded:
            verb = 'resumed from' if resume else 'loaded from'
            if path is None:
                path = find_latest_checkpoint(self.work_dir)
            return f'{verb} {path}'
        pretrained = []
        for name, module in model.named_modules():
            init_cfg = getattr(module, 'init_cfg', None)
            if isinstance(init_cfg, dict) and \
                    init_cfg.get('type') == 'Pretrained':
                pretrained.append(f'{name or "model"} from '
                                  f'{init_cfg.get("checkpoint")}')
        return ', '.join(pretrained) or 'random initialisation'


@RUNNERS.register_module()
class FastMIMRunner(FastMIMRunnerMixin, Runner):
    """A Runner whose checkpoint loads are checked and whose console shows
    what a user reads.

    - Every load of the run (the weights' initialisation, e.g. a backbone's
      ``init_cfg`` of type ``Pretrained``; ``load_from``; ``resume``) runs
      inside a :class:`~fastmim_mm.engine.CheckedLoading` block: local files
      are read weights-only with MMEngine's own types allowed (so its
      checkpoints resume on torch >= 2.6), and a checkpoint that does not
      fit the model stops the run with one line. Swin/BEiT tables are
      resized without SciPy's removed ``interp2d`` during those loads.
      Loads outside the run are left to MMEngine.
    - On a machine with a CUDA device and an mmcv built without CUDA
      kernels, mmcv's ``nms`` and ``RoIAlign`` on CUDA tensors go to
      torchvision's kernels (for the whole process; logged once).
    - The config dump, the environment, the hook order, the optimiser
      constructors' per-parameter lines (logged or printed), the stack's
      per-load and per-table lines and its notices about its own code go to
      the log file only (``_FILE_ONLY``): a run shows a handful of lines
      before its first loss.
    - One line says what was built: model, parameters, input size, data and
      the weights it starts from (with the log file's path).
    - Warnings are shown once per run, each in one line, and kept in the
      log file (:class:`RunConsole`).
    - Any entry of ``default_hooks`` set to None is left out (MMEngine
      allows that only for its own six).
    - Processes without CUDA (``tools/dist_train.sh`` on CPU) replace
      SyncBN by BN, with a warning: torch's SyncBatchNorm needs GPUs. Each
      process then normalises with the statistics of its own batch.
    - ``compile`` (``--compile``) compiles the model's forward pass.
      MMEngine compiles the whole ``train_step``, optimiser step included,
      and TorchDynamo fails on the optimiser wrapper in the first
      iteration (``'UserDefinedDictVariable' object has no attribute
      'items'``); the forward pass is where the time goes.
    """

    def _init_model_weights(self) -> None:
        with self.checked_loads():
            super()._init_model_weights()

    def build_logger(self, *args, **kwargs):
        logger = super().build_logger(*args, **kwargs)
        RunConsole.install().attach(logger)
        return logger

    def wrap_model(self, model_wrapper_cfg, model):
        if self.distributed and not torch.cuda.is_available():
            if any(
                    type(m).__name__ == 'SyncBatchNorm'  # torch's or mmcv's
                    for m in model.modules()):
                print_log(
                    'No CUDA device: SyncBN layers are replaced by BN, each '
                    'process normalising over its own batch.',
                    logger='current',
                    level=logging.WARNING)
            model = revert_sync_batchnorm(model)
            if self.cfg.get('sync_bn'):
                self.cfg.sync_bn = None
        return super().wrap_model(model_wrapper_cfg, model)

    def _maybe_compile(self, target: str) -> None:
        options = self.cfg.get('compile')
        if not options:
            return
        model = self._unwrapped_model()
        model.compile(**({} if options is True else options))
        self.logger.info('Compiled the model\'s forward pass '
                         '(torch.compile); the first iterations are slow.')
