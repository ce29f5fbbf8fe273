"""What tools/train.py and tools/test.py share: work dir, launcher set-up
(torch.distributed on CPU included), runner construction and one-line
errors instead of engine stack traces."""
import argparse
import gc
import os
import os.path as osp
import pickle
import sys
from contextlib import contextmanager

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS

from .data_files import check_dataset_files
from .input_size import check_pretrain_input_size


def add_runner_args(parser: argparse.ArgumentParser, example: str) -> None:
    """--work-dir, --cfg-options, --launcher and --local-rank."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs such as '
        f'{example}')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_args(parser: argparse.ArgumentParser, argv=None):
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def fail(prog: str, message: str):
    print(f'{prog}: error: {message}', file=sys.stderr)
    sys.exit(1)


def set_work_dir(cfg: Config, config_path: str, work_dir=None) -> None:
    """``--work-dir``, else the config's, else work_dirs/CONFIG_NAME."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


def setup_launcher(cfg: Config, launcher: str, prog: str) -> None:
    """Set ``cfg.launcher``; without a GPU, prepare torch.distributed on CPU.

    MMEngine's own init for the pytorch launcher selects a CUDA device, which
    fails without one; it skips its init when a process group exists. So on
    CPU this creates a gloo group and makes DDP run without device ids.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        fail(
            prog, f'--launcher {launcher} needs CUDA devices; on CPU use '
            f'--launcher pytorch (tools/dist_train.sh).')
    cfg.merge_from_dict({'env_cfg.dist_cfg.backend': 'gloo'})
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


@contextmanager
def distributed_session():
    """Shut the process group down, its worker threads joined, before the
    interpreter exits.

    A gloo worker thread can still be releasing the tensors of the last
    collective (the evaluator's metric broadcast) when the main thread
    returns. If the interpreter is already finalising, that thread cannot
    take the GIL and the process aborts ("terminate called without an
    active exception"). The group outlives ``destroy_process_group`` while
    anything holds it, and the DDP wrapper does, inside the runner's
    reference cycles; so collect those first, then destroy the group, which
    joins its threads.
    """
    try:
        yield
    finally:
        if dist.is_available() and dist.is_initialized():
            gc.collect()
            dist.destroy_process_group()


def build_runner(cfg: Config):
    """Check the config, then build its runner: :class:`FastMIMRunner`
    unless it names a runner of its own (``runner_type``)."""
    check_pretrain_input_size(cfg)
    check_dataset_files(cfg)
    cfg.setdefault('runner_type', 'FastMIMRunner')
    return RUNNERS.build(cfg)


@contextmanager
def clear_errors(prog: str):
    """Report configuration errors, missing files, a non-finite loss and
    refused checkpoints in one line (FASTMIM_TRACEBACK=1 shows the trace).
    """
    try:
        yield
    except (ValueError, FloatingPointError, FileNotFoundError) as e:
        if os.environ.get('FASTMIM_TRACEBACK'):
            raise
        fail(prog, f'{e}\n(set FASTMIM_TRACEBACK=1 for the full trace)')
    except pickle.UnpicklingError as e:
        if os.environ.get('FASTMIM_TRACEBACK'):
            raise
        fail(
            prog, 'a checkpoint was refused by weights-only loading: it '
            'holds objects other than tensors and the plain types MMEngine '
            'saves, which could run code when unpickled. Use a checkpoint '
            'from a source you trust, or convert it. torch said: '
            f'{str(e).splitlines()[0]}')
