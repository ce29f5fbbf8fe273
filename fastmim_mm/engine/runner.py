"""MMEngine's Runner with checked checkpoint loads, a readable console and
a ``compile`` that trains.

tools/train.py and tools/test.py use it for every config that names no
runner of its own (``runner_type``).
"""
import logging
import warnings
from contextlib import contextmanager
from typing import Optional

import torch
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper, revert_sync_batchnorm
from mmengine.registry import RUNNERS
from mmengine.runner import BaseLoop, Runner, find_latest_checkpoint

from ..compat import mmcv_ops, private_api
from ..datasets import PerSampleSeedDataset
from .checkpoint_fit import CheckedLoading

# Records MMEngine and the optimiser constructors log at INFO before
# training starts: hundreds of lines a user reads in the log file if at all.
_FILE_ONLY = ('Config:\n', 'paramwise_options -- ',
              '\n' + '-' * 60 + '\nSystem environment:',
              'Hooks will be executed in the following order:')

_MMENGINE_DEFAULT_HOOKS = ('runtime_info', 'timer', 'sampler_seed', 'logger',
                           'param_scheduler', 'checkpoint')


class _Console(logging.Filter):
    """Keeps the config dump, environment and parameter tables off the
    console (the log file still gets them) and shows each warning once."""

    def __init__(self) -> None:
        super().__init__()
        self._warned = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(_FILE_ONLY):
            return False
        if record.levelno == logging.WARNING:
            if message in self._warned:
                return False
            self._warned.add(message)
        return True


def _show_once(show):
    """``warnings.showwarning`` that skips a warning already shown.

    The ``once`` filter is not enough: every change of the filters (each
    ``warnings.catch_warnings`` block) clears what Python remembers.
    """
    shown = set()

    def showwarning(message, category, *args, **kwargs):
        key = (category, str(message))
        if key not in shown:
            shown.add(key)
            show(message, category, *args, **kwargs)

    showwarning.shows_once = True
    return showwarning


def _millions(n: int) -> str:
    return f'{n / 1e6:.2f} M'


@RUNNERS.register_module()
class FastMIMRunner(Runner):
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
    - The config dump, the environment, the hook order and the per-parameter
      optimiser settings go to the log file only.
    - One line says what was built: model, parameters, input size, data and
      the weights it starts from (with the log file's path).
    - A warning repeated with the same text is shown once per process.
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

    def _init_model_weights(self) -> None:
        with self.checked_loads():
            super()._init_model_weights()

    def load_checkpoint(self, *args, **kwargs):
        with self.checked_loads():
            return super().load_checkpoint(*args, **kwargs)

    def resume(self, *args, **kwargs) -> None:
        with self.checked_loads(resume=True):
            super().resume(*args, **kwargs)

    def build_logger(self, *args, **kwargs):
        logger = super().build_logger(*args, **kwargs)
        for handler in logger.handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.addFilter(_Console())
        if not getattr(warnings.showwarning, 'shows_once', False):
            warnings.showwarning = _show_once(warnings.showwarning)
        return logger

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

    def load_or_resume(self) -> None:
        super().load_or_resume()
        self.logger.info(self.summary())

    def summary(self) -> str:
        """One line: model, parameters, input size, data, weights."""
        model = self._unwrapped_model()
        params = list(model.parameters())
        total = sum(p.numel() for p in params)
        trainable = sum(p.numel() for p in params if p.requires_grad)
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
