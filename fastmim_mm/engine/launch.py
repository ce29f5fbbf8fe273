"""What tools/train.py and tools/test.py share: work dir, launcher set-up
(torch.distributed on CPU included), runner construction and one-line
errors instead of engine stack traces."""
import argparse
import gc
import os
import os.path as osp
import pickle
import subprocess
import sys
from contextlib import contextmanager
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS

from .data_files import check_dataset_files, missing_local_file
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


def _slurm_env() -> None:
    """The variables torch.distributed reads, from those Slurm sets, as
    MMEngine's slurm init sets them (first node of the job as master)."""
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        nodes = subprocess.run(
            ['scontrol', 'show', 'hostname', os.environ['SLURM_NODELIST']],
            capture_output=True,
            text=True,
            check=True).stdout.split()
        os.environ['MASTER_ADDR'] = nodes[0]


def setup_launcher(cfg: Config, launcher: str, prog: str) -> None:
    """Set ``cfg.launcher``; without a GPU, prepare torch.distributed on CPU.

    MMEngine's own init for the pytorch and slurm launchers selects a CUDA
    device, which fails without one; it skips its init when a process group
    exists. So on CPU this creates a gloo group and makes DDP run without
    device ids.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher not in ('pytorch', 'slurm'):
        fail(
            prog, f'--launcher {launcher} needs CUDA devices; on CPU use '
            f'--launcher pytorch (tools/dist_train.sh) or slurm.')
    cfg.merge_from_dict({'env_cfg.dist_cfg.backend': 'gloo'})
    if not dist.is_initialized():
        if launcher == 'slurm':
            _slurm_env()
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


_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _loaders_without_workers(cfg: Config) -> None:
    """``persistent_workers`` off where a loader has no workers (torch's
    DataLoader refuses the pair), so that ``num_workers=0`` alone works."""
    for key in _LOADERS:
        loader = cfg.get(key)
        if isinstance(loader, dict) and not loader.get('num_workers') and \
                loader.get('persistent_workers'):
            loader.persistent_workers = False


def _pretrained_inits(node, path: str):
    """(key, checkpoint) of every ``Pretrained`` init_cfg below ``node``."""
    if isinstance(node, dict):
        if str(node.get('type', '')).split('.')[-1] == 'Pretrained' and \
                'checkpoint' in node:
            yield f'{path}.checkpoint', node['checkpoint']
        for key, value in node.items():
            yield from _pretrained_inits(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _pretrained_inits(value, f'{path}.{i}')


def check_start_checkpoints(cfg: Config) -> None:
    """Raise FileNotFoundError naming the key, when a checkpoint the model
    starts from (an ``init_cfg`` of type ``Pretrained``, ``load_from``)
    is a local file that does not exist."""
    starts = list(_pretrained_inits(cfg.get('model'), 'model'))
    if not cfg.get('resume'):
        starts.append(('load_from', cfg.get('load_from')))
    for key, path in starts:
        if missing_local_file(path):
            raise FileNotFoundError(
                f'{key}: {path} does not exist. Give the checkpoint to '
                f'start from with --cfg-options {key}=PATH.pth')


def build_runner(cfg: Config, train: bool = True):
    """Check the config, then build its runner: :class:`FastMIMRunner`
    unless it names a runner of its own (``runner_type``).

    Args:
        cfg (Config): The config, command-line options merged.
        train (bool): Whether the runner will train (check the data of
            training and validation and the checkpoints training starts
            from) or test (check the test data). Defaults to True.
    """
    check_pretrain_input_size(cfg)
    if train:
        loaders = ['train_dataloader']
        if cfg.get('val_cfg') is not None:
            loaders.append('val_dataloader')
        check_dataset_files(cfg, loaders)
        check_start_checkpoints(cfg)
    else:
        check_dataset_files(cfg, ['test_dataloader'])
    _loaders_without_workers(cfg)
    cfg.setdefault('runner_type', 'FastMIMRunner')
    return RUNNERS.build(cfg)


def _batch_norm_message(cfg: Optional[Config], error: ValueError) -> str:
    """Torch's BatchNorm error on a batch of one, with the setting."""
    loader = (cfg.get('train_dataloader') if cfg is not None else None) or {}
    return (f'a BatchNorm layer got one value per channel in training '
            f'({error}): with train_dataloader.batch_size='
            f'{loader.get("batch_size", "?")} per process, a layer that '
            f'pools to 1 x 1 (as UperNet\'s pyramid pooling does) has '
            f'nothing to normalise over. Set --cfg-options '
            f'train_dataloader.batch_size=2 or more.')


@contextmanager
def clear_errors(prog: str, cfg: Optional[Config] = None):
    """Report configuration errors, missing files, a non-finite loss and
    refused checkpoints in one line (FASTMIM_TRACEBACK=1 shows the trace).
    ``cfg`` lets the line name the setting where the error comes from
    torch (a batch of one in BatchNorm)."""
    try:
        yield
    except (ValueError, FloatingPointError, FileNotFoundError) as e:
        if os.environ.get('FASTMIM_TRACEBACK'):
            raise
        message = str(e)
        if message.startswith('Expected more than 1 value per channel'):
            message = _batch_norm_message(cfg, e)
        fail(prog, f'{message}\n(set FASTMIM_TRACEBACK=1 for the full trace)')
    except pickle.UnpicklingError as e:
        if os.environ.get('FASTMIM_TRACEBACK'):
            raise
        fail(
            prog, 'a checkpoint was refused by weights-only loading: it '
            'holds objects other than tensors and the plain types MMEngine '
            'saves, which could run code when unpickled. Use a checkpoint '
            'from a source you trust, or convert it. torch said: '
            f'{str(e).splitlines()[0]}')
