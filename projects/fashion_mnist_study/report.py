"""The study's results from its units' records: ``results.json`` (per arm
and seed, with the settings), the table of ``results.md`` and the plots of
``results.png``."""
import os
import statistics

import torch

from .arms import ARMS
from .evaluation import KNN_DESCRIPTION


def mean_std(values: list) -> tuple:
    if not values:
        return None, None
    std = statistics.stdev(values) if len(values) > 1 else None
    return statistics.mean(values), std


def unit_seconds(record: dict) -> float:
    """The time of one arm and seed's units: pre-training (and its online
    kNN), kNN and fine-tuning."""
    pretrain = record['pretrain']
    online = pretrain.get('online_knn') or {}
    return pretrain['seconds'] + online.get('seconds', 0.) + \
        record['knn']['seconds'] + sum(
            f['seconds'] for f in record['finetune'].values())


def machine_info(device: str) -> dict:
    """What the study ran on, as ``results.json`` records it."""
    return dict(
        cpus=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        device=device,
        gpu=torch.cuda.get_device_name() if device == 'cuda' else None,
        torch=torch.__version__)


def aggregate(name, preset, records, calibration, labelled, seconds,
              machine) -> dict:
    """The results of preset ``name`` from ``records`` (arm: pre-training
    seed: dict of its pretrain, knn and finetune records).

    Args:
        name (str): The preset's name.
        preset (dict): The preset.
        records (dict): The units' records, by arm and pre-training seed.
        calibration (dict, optional): The step-time calibration.
        labelled (list): The fine-tuning images' indices.
        seconds (float): The time of this invocation.
        machine (dict): What it ran on (:func:`machine_info`).
    """
    arms = {}
    for arm in preset['arms']:
        config, budget, label = ARMS[arm]
        runs = [
            records[arm][s] for s in preset['pt_seeds'] if s in records[arm]
        ]
        knn = [r['knn']['accuracy'] for r in runs]
        fts = [
            f for r in runs for u, f in r['finetune'].items() if u != 'ft-long'
        ]
        ft = [f['accuracy'] for f in fts]
        curve = [[it, statistics.mean(f['curve'][i][1] for f in fts)]
                 for i, (it, _) in enumerate(fts[0]['curve'])] if fts else []
        long = [
            r['finetune']['ft-long'] for r in runs
            if 'ft-long' in r['finetune']
        ]
        pre = [r['pretrain'] for r in runs]
        arms[arm] = dict(
            label=label,
            config=config,
            budget=budget,
            iters=pre[0]['iters'] if pre else None,
            epochs=pre[0]['epochs'] if pre else None,
            pretrain_seconds=[p['seconds'] for p in pre],
            images_per_s=[p['images_per_s'] for p in pre],
            final_loss=[p['final_loss'] for p in pre],
            knn=knn,
            knn_mean_std=mean_std(knn),
            finetune=ft,
            finetune_mean_std=mean_std(ft),
            finetune_curve_mean=curve,
            long_schedule=dict(
                iters=long[0]['settings']['ft_iters'],
                accuracy=long[0]['accuracy'],
                curve=long[0]['curve']) if long else None,
            runs={
                str(s): records[arm][s]
                for s in preset['pt_seeds'] if s in records[arm]
            })
    return dict(
        preset=name,
        settings=preset,
        machine=machine,
        study_seconds=seconds,
        # The study's cost over all its sittings: every unit's own time.
        run_seconds=sum(
            unit_seconds(r) for runs in records.values()
            for r in runs.values()),
        calibration=calibration,
        evaluation=dict(
            knn=KNN_DESCRIPTION,
            finetune=f'{len(labelled)} labels (first {preset["labels"]} of '
            'each class in file order), final test accuracy, 32 px'
            if preset['ft_seeds'] else None,
            labelled_indices=labelled),
        arms=arms)


def fmt(mean_std: tuple, n: int) -> str:
    mean, std = mean_std
    if mean is None:
        return '-'
    return f'{mean:.1f}' + (f' ± {std:.1f}' if std is not None else '') + \
        f' (n={n})'


def write_table(results: dict, path: str) -> None:
    fine_tuned = bool(results['settings']['ft_seeds'])
    labels = len(results['evaluation']['labelled_indices'])
    head = '| arm | pre-training iterations (epochs) | wall-clock (s) | ' \
        'images/s | kNN top-1 |'
    rule = '| --- | ---: | ---: | ---: | ---: |'
    if fine_tuned:
        head += f' fine-tune top-1 ({labels:,} labels) |'
        rule += ' ---: |'
    lines = [head, rule]
    for arm, r in results['arms'].items():
        secs = mean_std(r['pretrain_seconds'])[0]
        ips = [x for x in r['images_per_s'] if x]
        lines.append(f'| {r["label"]} | ' + (
            f'{r["iters"]} ({r["epochs"]:.2f})' if r['iters'] else '-') +
                     ' | ' + (f'{secs:.0f}' if secs else '-') + ' | ' +
                     (f'{statistics.mean(ips):.0f}' if ips else '-') +
                     f' | {fmt(r["knn_mean_std"], len(r["knn"]))} |' +
                     (f' {fmt(r["finetune_mean_std"], len(r["finetune"]))} |'
                      if fine_tuned else ''))
    m = results['machine']
    units = 'pre-training, kNN and fine-tuning' if fine_tuned else \
        'pre-training and kNN'
    spread = ('Mean ± standard deviation over pre-training seeds (kNN) and '
              'over pre-training x fine-tuning seeds (fine-tune).'
              if fine_tuned else 'No fine-tuning in this preset; mean ± '
              'standard deviation over pre-training seeds.')
    cost = (f'Preset `{results["preset"]}`, {m["device"]} '
            f'({m["gpu"] or str(m["cpus"]) + " cores"}): '
            f'{results["run_seconds"] / 3600:.2f} h of {units}, summed over '
            'every arm and seed (and over sittings), '
            f'{results["study_seconds"] / 60:.0f} min in this invocation. ' +
            spread)
    lines += ['', cost]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def online_curves(run: dict):
    """The online kNN of a run's pre-training: (settings, training seconds,
    top-1); None for a run without (e.g. those of docs/study)."""
    online = run['pretrain'].get('online_knn')
    if not online:
        return None
    _, seconds, top1 = zip(*online['curve'])
    return online, seconds, top1


def write_plot(results: dict, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fine_tuned = bool(results['settings']['ft_seeds'])
    height = 4.6 * (2 if fine_tuned else 1) + 1  # inches, legend included
    fig, axes = plt.subplots(
        2 if fine_tuned else 1, 2, figsize=(12, height), squeeze=False)
    axes = list(axes.flat)
    knn_ax, online_ax = axes[0], axes[1]
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    online_sets = set()
    for i, (arm, r) in enumerate(results['arms'].items()):
        colour = colours[i % len(colours)]
        for seed, run in r['runs'].items():
            x = run['pretrain']['seconds']
            knn_ax.scatter(
                x,
                run['knn']['accuracy'],
                color=colour,
                label=r['label'] if seed == '0' else None)
            online = online_curves(run)
            if online:
                settings, seconds, top1 = online
                online_sets.add((settings['memory'], settings['queries']))
                online_ax.plot(
                    seconds,
                    top1,
                    marker='.',
                    color=colour,
                    linestyle='-' if seed == '0' else ':')
            for unit, ft in run['finetune'].items():
                if unit != 'ft-long':
                    axes[2].scatter(x, ft['accuracy'], color=colour)
        if r['finetune_curve_mean']:
            its, accs = zip(*r['finetune_curve_mean'])
            axes[3].plot(its, accs, marker='.', color=colour)
        if r['long_schedule']:
            its, accs = zip(*r['long_schedule']['curve'])
            axes[3].plot(
                its,
                accs,
                linestyle='--',
                color=colour,
                label=f'{r["label"]}, '
                f'{r["long_schedule"]["iters"]} iterations')
    knn_ax.set(
        title='kNN (frozen encoder), after pre-training',
        xlabel='pre-training wall-clock (s)',
        ylabel='test top-1 (%)')
    sets = ', '.join(f'{m:,} neighbours, {q:,} test images'
                     for m, q in sorted(online_sets))
    online_ax.set(
        title='online kNN during pre-training' +
        (f' ({sets})' if sets else ''),
        xlabel='pre-training wall-clock (s), evaluations excluded',
        ylabel='test top-1 (%)')
    if not online_sets:
        online_ax.text(
            .5,
            .5,
            'no online kNN logged in these runs',
            ha='center',
            va='center',
            transform=online_ax.transAxes)
        online_ax.set(xticks=[], yticks=[])
    if fine_tuned:
        labels = len(results['evaluation']['labelled_indices'])
        axes[2].set(
            title=f'fine-tuned on {labels:,} labels',
            xlabel='pre-training wall-clock (s)',
            ylabel='test top-1 (%)')
        axes[3].set(
            title='fine-tuning (mean over seeds)',
            xlabel='fine-tuning iteration',
            ylabel='top-1 (%), first test images')
    for ax in axes:
        ax.grid(alpha=.3)
    fig.legend(loc='lower center', ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 1.1 / height, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
