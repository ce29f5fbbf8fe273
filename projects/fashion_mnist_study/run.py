"""Run the Fashion-MNIST study of FastMIM (what it measures, its arms and
presets: README.md in this folder).

Every unit (an arm's pre-training, its kNN, one fine-tuning per seed) is
cached as JSON under ``WORK_DIR/cache``, so an interrupted study resumes where
it stopped; at the end ``results.json``, ``results.md`` and ``results.png``
are written to the work dir.

Example::

    python projects/fashion_mnist_study/run.py --preset quick
    python projects/fashion_mnist_study/run.py --preset full \\
        --work-dir docs/study
"""
import argparse
import os
import os.path as osp
import sys
import time

import torch

if not __package__:
    # Run as a script: the path holds this folder, whose module names would
    # shadow others', and not the repository root, which holds projects/.
    _here = osp.dirname(osp.abspath(__file__))
    sys.path[:] = [p for p in sys.path if osp.abspath(p) != _here]
    sys.path.insert(0, osp.dirname(osp.dirname(_here)))

# isort: off
from projects.fashion_mnist_study.arms import (  # noqa: E402
    ARMS, ONLINE_KNN, PRESETS, TIME_REFERENCE, unit_settings)
from projects.fashion_mnist_study.console import PROG, fail, log  # noqa: E402
from projects.fashion_mnist_study.data import (  # noqa: E402
    DEBIAN_DIR, DEBIAN_PACKAGE, labelled_subset, prepare_data)
from projects.fashion_mnist_study.report import (  # noqa: E402
    aggregate, machine_info, write_plot, write_table)
from projects.fashion_mnist_study.units import (  # noqa: E402
    Cache, Progress, calibrate, checkpoint_path, load_calibration,
    run_finetune, run_knn, run_pretrain, write_json)
# isort: on


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Fashion-MNIST study of FastMIM (see '
        'projects/fashion_mnist_study/README.md).')
    parser.add_argument('--preset', choices=list(PRESETS), default='quick')
    parser.add_argument('--work-dir', default='work_dirs/study')
    parser.add_argument(
        '--idx-dir',
        help='folder with the Fashion-MNIST IDX files (gzipped or not); '
        f'default: {DEBIAN_DIR}, from the Debian package {DEBIAN_PACKAGE} '
        f'(apt-get install {DEBIAN_PACKAGE})')
    parser.add_argument(
        '--data-dir',
        default='data/fashion_mnist',
        help='where the un-gzipped IDX files are written')
    parser.add_argument(
        '--device',
        choices=['cpu', 'cuda'],
        default='cuda' if torch.cuda.is_available() else 'cpu')
    return parser.parse_args(argv)


def cached_units(args, cache, arm, seed, settings) -> dict:
    """The cached record of each unit of ``arm`` and ``seed`` (None where
    it is to be computed)."""
    cached = {u: cache.get(arm, seed, u, s) for u, s in settings.items()}
    evals = [u for u in settings if u != 'pretrain']
    if cached['pretrain'] is not None and any(
            cached[u] is None for u in evals) and not osp.isfile(
                checkpoint_path(args, cached['pretrain'])):
        log(f'{arm} seed {seed}: the checkpoint is gone; it will be '
            'pre-trained again, and its cached evaluations are dropped so '
            'that all come from one encoder')
        cached = dict.fromkeys(cached)
    return cached


def plan(progress, preset, arm, settings, cached) -> None:
    config = ARMS[arm][0]
    if settings is None:  # an equal-time arm costs what its reference does
        progress.plan('pretrain', (ARMS[TIME_REFERENCE][0], preset['iters']))
        progress.plan('knn')
        progress.plan('finetune', len(preset['ft_seeds']))
        return
    if cached['pretrain'] is None and config is not None:
        progress.plan('pretrain', (config, settings['pretrain']['iters']))
    progress.plan('knn', cached['knn'] is None)
    progress.plan(
        'finetune',
        sum(settings[u]['ft_iters'] / preset['ft_iters'] for u in settings
            if u.startswith('ft') and cached[u] is None))


def main(argv=None):
    args = parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        fail('--device cuda: no CUDA device is available.')
    if args.device == 'cpu' and torch.cuda.is_available():
        fail('--device cpu on a machine with a GPU: run with '
             'CUDA_VISIBLE_DEVICES= instead (MMEngine picks the GPU).')
    preset = PRESETS[args.preset]
    os.makedirs(args.work_dir, exist_ok=True)
    args.data_dir = osp.abspath(prepare_data(args.idx_dir, args.data_dir))
    labelled = labelled_subset(args.data_dir, preset['labels']) \
        if preset['ft_seeds'] else []
    # Calibrated only when the first equal-time arm needs it, so that it
    # sees the load the machine has then.
    calibration = load_calibration(args.work_dir, preset)
    cache = Cache(args.work_dir)

    # Seed-major order: an interrupted study has every arm at some seeds.
    units = []
    progress = Progress()
    for seed in preset['pt_seeds']:
        for arm in preset['arms']:
            settings = unit_settings(arm, seed, preset, calibration)
            cached = None if settings is None else cached_units(
                args, cache, arm, seed, settings)
            plan(progress, preset, arm, settings, cached)
            units.append((arm, seed, settings, cached))

    records = {arm: {} for arm in preset['arms']}
    for i, (arm, seed, settings, cached) in enumerate(units):
        config = ARMS[arm][0]
        if settings is None:
            if calibration is None:
                calibration = calibrate(args, preset)
            settings = unit_settings(arm, seed, preset, calibration)
            cached = cached_units(args, cache, arm, seed, settings)
            progress.left_pretrain.remove(
                (ARMS[TIME_REFERENCE][0], preset['iters']))
            if cached['pretrain'] is None:
                progress.plan('pretrain',
                              (config, settings['pretrain']['iters']))
        log(f'arm {arm} ({ARMS[arm][2]}), pre-training seed {seed} '
            f'[{i + 1}/{len(units)}]: {progress.line()}')
        pretrain = cached['pretrain']
        if pretrain is None:
            iters = settings['pretrain']['iters']
            log(f'  pre-training {arm} seed {seed}: {iters} iterations')
            pretrain = cache.put(
                arm, seed, 'pretrain', settings['pretrain'],
                run_pretrain(args, arm, seed, iters, preset,
                             ONLINE_KNN[args.preset]))
            if config is not None:
                online = pretrain.get('online_knn') or {}
                progress.done('pretrain',
                              pretrain['seconds'] + online.get('seconds', 0.),
                              (config, iters))
        knn = cached['knn']
        if knn is None:
            log(f'  computing kNN for {arm} seed {seed}: {progress.line()}')
            knn = cache.put(arm, seed, 'knn', settings['knn'],
                            run_knn(args, arm, seed, pretrain, preset))
            progress.done('knn', knn['seconds'])
        log(f'  kNN {arm} seed {seed}: {knn["accuracy"]:.2f}%')
        fts = {}
        for unit in [u for u in settings if u.startswith('ft')]:
            ft = settings[unit]
            if cached[unit] is None:
                log(f'  fine-tuning {arm} seed {seed}, fine-tuning seed '
                    f'{ft["ft_seed"]}, {ft["ft_iters"]} iterations: '
                    f'{progress.line()}')
                cached[unit] = cache.put(
                    arm, seed, unit, ft,
                    run_finetune(args, arm, seed, unit, pretrain, ft,
                                 labelled))
                progress.done('finetune', cached[unit]['seconds'],
                              ft['ft_iters'] / preset['ft_iters'])
            log(f'  fine-tuned {arm} seed {seed}/{ft["ft_seed"]} '
                f'({ft["ft_iters"]} iterations): '
                f'{cached[unit]["accuracy"]:.2f}%')
            fts[unit] = cached[unit]
        records[arm][seed] = dict(pretrain=pretrain, knn=knn, finetune=fts)

    results = aggregate(args.preset, preset, records, calibration, labelled,
                        time.perf_counter() - progress.start,
                        machine_info(args.device))
    write_json(osp.join(args.work_dir, 'results.json'), results)
    write_table(results, osp.join(args.work_dir, 'results.md'))
    write_plot(results, osp.join(args.work_dir, 'results.png'))
    with open(osp.join(args.work_dir, 'results.md')) as f:
        print(f.read(), end='')
    log(f'results in {osp.join(args.work_dir, "results.json")}, '
        f'results.md and results.png')


if __name__ == '__main__':
    main()
