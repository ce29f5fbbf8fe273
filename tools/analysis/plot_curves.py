"""Plot the training curves of one or more runs into one PNG.

Reads MMEngine's scalar logs, ``WORK_DIR/<timestamp>/vis_data/scalars.json``
(written by the default ``LocalVisBackend``; a run resumed in the same work
dir has one per start, and a later one replaces what an earlier one logged
from its first step on), and draws one panel per key against the epoch
(the iteration for iteration-based runs): by default the loss, the learning
rate and every validation metric, e.g. the online kNN accuracy of
:class:`~fastmim_mm.evaluation.KNNValLoop` (``knn/top1``, ``knn/top5``,
``knn/1shot_top1``, ...). Several work dirs are overlaid, one colour each.

Training values are those of the logged iterations (smoothed over the
logger's window), placed at their fraction of an epoch; validation metrics
at the epoch (iteration) they were computed after. Iteration-based runs
must log their metrics by iteration:
``default_hooks.logger.log_metric_by_epoch=False``.

Example::

    python tools/analysis/plot_curves.py work_dirs/run_a work_dirs/run_b \\
        --labels A B --out curves.png

MMPretrain's ``tools/analysis_tools/analyze_logs.py plot_curve`` draws all
keys into one axes with a shared scale, and validation metrics against raw
steps; this tool gives each key its own panel on a common epoch axis.
"""
import argparse
import glob
import json
import math
import os.path as osp
import statistics
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

PROG = 'plot_curves.py'
# Logged with every metric, not metrics themselves.
_BOOKKEEPING = {'step', 'epoch', 'iter', 'time', 'data_time', 'memory'}


def fail(message: str):
    print(f'{PROG}: error: {message}', file=sys.stderr)
    sys.exit(1)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Plot loss, lr and validation metrics of MMEngine runs '
        'against the epoch (see the module docstring).')
    parser.add_argument('work_dirs', nargs='+', help='work dirs of runs')
    parser.add_argument(
        '--keys',
        nargs='+',
        help='keys to plot (default: loss, lr and every validation metric)')
    parser.add_argument(
        '--labels', nargs='+', help='legend of each run (default: its name)')
    parser.add_argument(
        '--out', default='curves.png', help='output PNG (default: curves.png)')
    parser.add_argument(
        '--title', help='figure title (default: none)', default=None)
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.work_dirs):
        fail(f'--labels: {len(args.labels)} labels for '
             f'{len(args.work_dirs)} work dirs.')
    return args


def read_scalars(work_dir: str) -> list:
    """The scalar records of a work dir, over all its starts."""
    paths = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not paths:
        fail(f'{work_dir} has no */vis_data/scalars.json; give the work dir '
             "of a run that used MMEngine's LocalVisBackend.")
    records = []
    for path in paths:
        with open(path) as f:
            start = []
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    start.append(json.loads(line))
                except json.JSONDecodeError:
                    if not f.read().strip():
                        break  # a run killed while writing its last line
                    fail(f'{path}, line {n}: not JSON.')
        if not start:
            continue
        first_step = start[0]['step']
        records = [r for r in records if r['step'] < first_step] + start
    return records


def run_curves(work_dir: str) -> dict:
    """``{key: (xs, ys)}`` of one run and whether x counts epochs."""
    records = read_scalars(work_dir)
    train = [r for r in records if 'iter' in r]
    val = [r for r in records if 'iter' not in r]
    by_epoch = bool(train) and all('epoch' in r for r in train)
    curves = {}

    def add(key, x, y):
        xs, ys = curves.setdefault(key, ([], []))
        xs.append(x)
        ys.append(y)

    if by_epoch:
        # The logger logs the same positions of every epoch, so the first
        # logged iterations of consecutive epochs are one epoch apart.
        firsts = {}
        for r in train:
            firsts.setdefault(r['epoch'], r['iter'])
        epochs = sorted(firsts)
        gaps = [(firsts[b] - firsts[a]) / (b - a)
                for a, b in zip(epochs, epochs[1:])]
        last = max(r['iter'] for r in train)
        per_epoch = statistics.median(gaps) if gaps else last
    elif val and len(val) > 1 and all(r['step'] == 0 for r in val):
        fail(f'{work_dir}: an iteration-based run that logged its '
             'validation metrics by epoch (all at step 0); run it with '
             '--cfg-options default_hooks.logger.log_metric_by_epoch=False.')
    for r in train:
        x = r['iter'] / per_epoch if by_epoch else r['iter']
        for key, value in r.items():
            if key not in _BOOKKEEPING:
                add(key, x, value)
    for r in val:
        for key, value in r.items():
            if key not in _BOOKKEEPING:
                add(key, r['step'], value)
    val_keys = [k for r in val for k in r if k not in _BOOKKEEPING]
    return dict(
        curves=curves,
        by_epoch=by_epoch,
        val_keys=list(dict.fromkeys(val_keys)))  # in the order logged


def plot(runs: list, labels: list, keys: list, out: str, title=None):
    cols = 2 if len(keys) == 4 else min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    xlabel = 'epoch' if runs[0]['by_epoch'] else 'iteration'
    for ax, key in zip(axes.flat, keys):
        for n, (run, label) in enumerate(zip(runs, labels)):
            if key not in run['curves']:
                continue
            xs, ys = run['curves'][key]
            marker = 'o' if key in run['val_keys'] else None
            ax.plot(
                xs,
                ys,
                color=colours[n % len(colours)],
                marker=marker,
                markersize=3,
                linewidth=1,
                label=label)
        ax.set_title(key)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis('off')
    handles, names = axes.flat[0].get_legend_handles_labels()
    for ax in axes.flat:
        h, n = ax.get_legend_handles_labels()
        if len(n) > len(names):
            handles, names = h, n
    fig.legend(
        handles,
        names,
        loc='lower center',
        ncol=min(len(names), 4),
        frameon=False)
    if title:
        fig.suptitle(title)
    legend_rows = math.ceil(len(names) / 4)
    fig.tight_layout(rect=(0, 0.06 * legend_rows / rows, 1, 1))
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    for work_dir in args.work_dirs:
        if not osp.isdir(work_dir):
            fail(f'{work_dir}: no such work dir.')
    runs = [run_curves(d) for d in args.work_dirs]
    if len({r['by_epoch'] for r in runs}) > 1:
        fail('the runs mix epoch- and iteration-based training; plot them '
             'separately.')
    labels = args.labels or [
        osp.basename(osp.normpath(d)) for d in args.work_dirs
    ]
    available = set().union(*(r['curves'] for r in runs))
    keys = args.keys
    if keys is None:
        val_keys = dict.fromkeys(k for r in runs for k in r['val_keys'])
        keys = [k for k in ('loss', 'lr') if k in available] + list(val_keys)
    missing = [k for k in keys if k not in available]
    if missing or not keys:
        fail(f'--keys: no run logged {", ".join(missing) or "anything"}; '
             f'the logs hold: {", ".join(sorted(available))}.')
    plot(runs, labels, keys, args.out, args.title)
    print(f'{PROG}: wrote {args.out}: {", ".join(keys)} of '
          f'{len(runs)} run{"s" if len(runs) > 1 else ""}')


if __name__ == '__main__':
    main()
