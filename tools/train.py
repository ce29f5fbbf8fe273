"""Train with an OpenMMLab config: FastMIM pre-training, and MMPretrain,
MMDetection or MMSegmentation configs alike (the registry scope comes from
the config's ``default_scope``)."""
import argparse
import os.path as osp
from functools import partial

import torch
from mmengine.config import Config

import fastmim_mm  # noqa: F401  (registers modules, safe checkpoint loading)
from fastmim_mm.engine.arguments import auto_resume_error, merge_cfg_options
from fastmim_mm.engine.launch import (add_runner_args, build_runner,
                                      clear_errors, distributed_session, fail,
                                      parse_runner_args, set_work_dir,
                                      setup_launcher)
from fastmim_mm.engine.runner import RunConsole

PROG = 'train.py'
fail = partial(fail, PROG)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or, without a path, from the '
        'latest checkpoint in the work dir (refused if it has none)')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed-precision training (needs a CUDA device): bf16 where the '
        'GPU supports it, else fp16 with dynamic loss scaling')
    parser.add_argument(
        '--compile',
        action='store_true',
        help='torch.compile the model\'s forward pass (cfg.compile=True)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by actual batch / auto_scale_lr.base_batch_size')
    add_runner_args(
        parser, 'train_dataloader.batch_size=64 or '
        'model.backbone.drop_path_rate=0.1')
    return parse_runner_args(parser, argv)


def merge_args(cfg: Config, args) -> Config:
    set_work_dir(cfg, args.config, args.work_dir)

    optim_type = cfg.get('optim_wrapper', {}).get('type', 'OptimWrapper')
    if args.amp:
        if not torch.cuda.is_available():
            fail('--amp needs a CUDA device; none is available.')
        if optim_type != 'AmpOptimWrapper':
            cfg.optim_wrapper.type = optim_type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if optim_type == 'AmpOptimWrapper' and torch.cuda.is_available():
        # dtype None (the configs'): bf16 where the GPU has it, else fp16
        # with the config's loss scaling.
        if cfg.optim_wrapper.get('dtype') is None:
            cfg.optim_wrapper.dtype = (
                'bfloat16' if torch.cuda.is_bf16_supported() else 'float16')
    elif optim_type == 'AmpOptimWrapper':
        # The paper configs train in bf16/fp16 on GPUs; on a CPU (a smoke test,
        # a debug run) the same config runs in fp32 instead of failing.
        RunConsole.install().note(
            'No CUDA device: the config\'s AmpOptimWrapper is replaced by '
            'an fp32 OptimWrapper.')
        for key in ('loss_scale', 'dtype', 'use_fsdp'):
            cfg.optim_wrapper.pop(key, None)
        cfg.optim_wrapper.type = 'OptimWrapper'

    if args.compile:
        cfg.compile = True

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in \
                cfg.auto_scale_lr:
            fail(f'--auto-scale-lr: {args.config} has no '
                 f'auto_scale_lr.base_batch_size.')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        error = auto_resume_error(cfg.work_dir)
        if error:
            fail(error)
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.exists(args.resume):
            fail(f'--resume {args.resume}: no such checkpoint file.')
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv=None):
    RunConsole.install()
    args = parse_args(argv)
    if not osp.isfile(args.config):
        fail(f'config file {args.config} does not exist.')
    cfg = Config.fromfile(args.config)
    try:
        merge_cfg_options(cfg, args.cfg_options)
    except ValueError as e:
        fail(str(e))
    cfg = merge_args(cfg, args)
    setup_launcher(cfg, args.launcher, PROG)
    with clear_errors(PROG, cfg), distributed_session():
        build_runner(cfg).train()


if __name__ == '__main__':
    main()
