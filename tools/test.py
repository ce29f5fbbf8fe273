"""Evaluate a checkpoint with an OpenMMLab config: MMPretrain, MMDetection
or MMSegmentation configs alike (the registry scope comes from the config's
``default_scope``), on GPUs or, for small runs, on the CPU.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE.pkl]
        [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]

The metrics are printed and logged in the work dir; ``--out`` also dumps the
predictions to a pickle file.
"""
import argparse
import os.path as osp
from functools import partial

from mmengine.config import Config

import fastmim_mm  # noqa: F401  (registers modules, safe checkpoint loading)
from fastmim_mm.engine.arguments import merge_cfg_options
from fastmim_mm.engine.launch import (add_runner_args, build_runner,
                                      clear_errors, distributed_session, fail,
                                      parse_runner_args, set_work_dir,
                                      setup_launcher)
from fastmim_mm.engine.runner import RunConsole

PROG = 'test.py'
fail = partial(fail, PROG)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Evaluate a checkpoint (MMPretrain, MMDetection or '
        'MMSegmentation config)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out',
        help='dump the predictions to this pickle file (.pkl / .pickle)')
    add_runner_args(
        parser, 'test_dataloader.batch_size=4 or model.test_cfg.mode=whole')
    return parse_runner_args(parser, argv)


def _dump_metric(cfg: Config, out: str) -> dict:
    """The evaluator that writes predictions for ``out``, in the config's
    scope: MMDetection's encodes masks as RLE, the others dump as they are.
    """
    if cfg.get('default_scope') == 'mmdet':
        return dict(type='mmdet.DumpDetResults', out_file_path=out)
    return dict(type='mmengine.DumpResults', out_file_path=out)


def merge_args(cfg: Config, args) -> Config:
    set_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            fail(f'--out {args.out}: the file must be a .pkl or .pickle '
                 f'file.')
        evaluator = cfg.test_evaluator
        if isinstance(evaluator, dict) and 'metrics' in evaluator:
            evaluator = evaluator['metrics']  # an Evaluator config
        metrics = list(evaluator) if isinstance(evaluator,
                                                (list,
                                                 tuple)) else [evaluator]
        metrics.append(_dump_metric(cfg, args.out))
        if isinstance(cfg.test_evaluator, dict) and \
                'metrics' in cfg.test_evaluator:
            cfg.test_evaluator.metrics = metrics
        else:
            cfg.test_evaluator = metrics
    return cfg


def main(argv=None):
    RunConsole.install()
    args = parse_args(argv)
    if not osp.isfile(args.config):
        fail(f'config file {args.config} does not exist.')
    if not osp.exists(args.checkpoint):
        fail(f'checkpoint {args.checkpoint} does not exist.')
    cfg = Config.fromfile(args.config)
    try:
        merge_cfg_options(cfg, args.cfg_options)
    except ValueError as e:
        fail(str(e))
    cfg = merge_args(cfg, args)
    missing = [
        key for key in ('test_dataloader', 'test_cfg', 'test_evaluator')
        if cfg.get(key) is None
    ]
    if missing:
        fail(f'{args.config} has no {", ".join(missing)}: it defines no '
             f'test (a pre-training config? Evaluate a fine-tuning or '
             f'downstream config).')
    setup_launcher(cfg, args.launcher, PROG)
    with clear_errors(PROG), distributed_session():
        metrics = build_runner(cfg, train=False).test()
    return metrics


if __name__ == '__main__':
    main()
