"""Check the study's online kNN against its offline kNN, and time it.

``agree``: pre-train one arm with the online kNN after its last iteration,
then compute the study's offline kNN of the checkpoint that run saved, with
the same neighbours and test images; prints both (exit status 1 if they
differ by 0.01 points or more).

``overhead``: pre-train one arm with and without the online kNN, in
interleaved rounds (the order alternating), and print the wall-clock of
each run (set-up, training, evaluations and checkpoint), the median
overhead, and the median share of the evaluations in the training time of
the runs with it (measured minutes apart, the whole runs differ by what
other processes on the machine do meanwhile; the share is measured within
one run). ``--iters`` equal to ``--interval`` times one evaluation per
interval, as a full-study arm has it (``arms.ONLINE_KNN``).

Example::

    python projects/fashion_mnist_study/check_online_knn.py agree \\
        --arm hog16 --iters 100 --memory 60000 --queries 10000
    python projects/fashion_mnist_study/check_online_knn.py overhead \\
        --arm hog16 --iters 500 --rounds 3
"""
import argparse
import os.path as osp
import shutil
import statistics
import sys
import time

import torch

if not __package__:
    # Run as a script: see run.py.
    _here = osp.dirname(osp.abspath(__file__))
    sys.path[:] = [p for p in sys.path if osp.abspath(p) != _here]
    sys.path.insert(0, osp.dirname(osp.dirname(_here)))

# isort: off
from projects.fashion_mnist_study.arms import (  # noqa: E402
    ARMS, ONLINE_KNN, PRESETS, online_interval)
from projects.fashion_mnist_study.console import log  # noqa: E402
from projects.fashion_mnist_study.data import prepare_data  # noqa: E402
from projects.fashion_mnist_study.units import run_knn, run_pretrain  # noqa
# isort: on

FULL = ONLINE_KNN['full']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Online against offline kNN of the Fashion-MNIST study, '
        'and the cost of the online kNN (see the module docstring).')
    parser.add_argument('check', choices=['agree', 'overhead'])
    parser.add_argument(
        '--arm',
        default='hog16',
        choices=[a for a in ARMS if ARMS[a][0] is not None])
    parser.add_argument('--iters', type=int, default=100)
    parser.add_argument(
        '--interval',
        type=int,
        help='overhead: iterations between evaluations (default: the full '
        "study's for --arm)")
    parser.add_argument('--memory', type=int, default=FULL['memory'])
    parser.add_argument('--queries', type=int, default=FULL['queries'])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--work-dir', default='work_dirs/check_online_knn')
    parser.add_argument('--idx-dir')
    parser.add_argument('--data-dir', default='data/fashion_mnist')
    args = parser.parse_args(argv)
    args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    return args


def agree(args, preset) -> int:
    online = dict(points=1, memory=args.memory, queries=args.queries)
    pretrain = run_pretrain(args, args.arm, 0, args.iters, preset, online)
    last = pretrain['online_knn']['curve'][-1]
    offline = run_knn(args, args.arm, 0, pretrain,
                      dict(knn_train=args.memory, knn_test=args.queries))
    diff = last[2] - offline['accuracy']
    log(f'{args.arm}, {args.iters} iterations, {args.memory} neighbours, '
        f'{args.queries} test images: online kNN after iteration {last[0]} '
        f'{last[2]:.4f} %, offline kNN of {pretrain["checkpoint"]} '
        f'{offline["accuracy"]:.4f} % (difference {diff:+.4f} points; '
        f'{pretrain["online_knn"]["seconds"]:.0f} s online, '
        f'{offline["seconds"]:.0f} s offline)')
    return int(abs(diff) >= 0.01)


def overhead(args, preset) -> int:
    interval = args.interval or online_interval(preset['iters'],
                                                FULL['points'])
    online = dict(
        points=-(-args.iters // interval),
        memory=args.memory,
        queries=args.queries)
    work_dir = args.work_dir
    seconds = dict(off=[], on=[])
    shares = []  # evaluation time / training time, within each run with it
    for r in range(args.rounds):
        for kind in ('off', 'on') if r % 2 == 0 else ('on', 'off'):
            args.work_dir = osp.join(work_dir, f'round{r}-{kind}')
            start = time.perf_counter()
            record = run_pretrain(args, args.arm, 0, args.iters, preset,
                                  online if kind == 'on' else None)
            seconds[kind].append(time.perf_counter() - start)
            if kind == 'on':
                shares.append(record['online_knn']['seconds'] /
                              record['seconds'])
            shutil.rmtree(args.work_dir)
            log(f'round {r + 1}/{args.rounds}, online kNN {kind}: '
                f'{seconds[kind][-1]:.1f} s')
    off, on = (statistics.median(seconds[k]) for k in ('off', 'on'))
    runs = {k: ', '.join(f'{s:.1f}' for s in v) for k, v in seconds.items()}
    log(f'{args.arm}, {args.iters} iterations of batch {preset["batch"]}, '
        f'online kNN every {interval} ({args.memory} neighbours, '
        f'{args.queries} test images): median {off:.1f} s without, '
        f'{on:.1f} s with ({100 * (on / off - 1):+.1f} %); within the runs '
        'with it, the evaluations took '
        f'{100 * statistics.median(shares):.1f} % of the training time '
        f'(median). Runs without: {runs["off"]} s; with: {runs["on"]} s.')
    return 0


def main(argv=None):
    args = parse_args(argv)
    args.data_dir = osp.abspath(prepare_data(args.idx_dir, args.data_dir))
    preset = PRESETS['full']
    return (agree if args.check == 'agree' else overhead)(args, preset)


if __name__ == '__main__':
    sys.exit(main())
