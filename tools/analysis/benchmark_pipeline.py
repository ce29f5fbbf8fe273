"""Images per second of the pre-training data pipeline: on one CPU core,
and through MMEngine's data loader with 1, 2, ... workers.

Compares MMPretrain's MAE-style pipeline (LoadImageFromFile +
RandomResizedCrop with the pillow or the cv2 backend + RandomFlip +
PackInputs) with the fused ``DecodeRandomResizedCrop`` + RandomFlip +
PackInputs, on ImageNet-sized JPEGs (generated, or a folder of your own).

1. One core: each pipeline called on every image in the main process,
   ``--repeats`` passes interleaved across the pipelines, the median pass;
   and each pipeline's images against those of MMPretrain's pillow
   pipeline, which crops the fully decoded image and resizes it with PIL's
   antialiased bicubic (PSNR per image: median and minimum; all pipelines
   draw the same boxes and flips for a seed).
2. Loader workers: the pre-training config's data loader
   (``configs/_base_/datasets/imagenet_fastmim-128px.py``: its sampler,
   per-sample seeding, persistent workers and collate) over the same images
   (``--loader-repeats`` times per epoch), for MMPretrain's pillow pipeline
   and the fused one, with each number of ``--workers``; images/s of the
   median epoch after a warm-up epoch, and images/s per worker process.

Example::

    python tools/analysis/benchmark_pipeline.py --num-images 300 \\
        --repeats 11 --json work_dirs/pipeline_benchmark.json
"""
import argparse
import io
import json
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from PIL import Image

import fastmim_mm  # noqa: F401  (registers DecodeRandomResizedCrop)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
from synthetic_imagenet import photo_like_image  # noqa: E402

PRETRAIN_DATA = osp.join(REPO, 'configs', '_base_', 'datasets',
                         'imagenet_fastmim-128px.py')
MMPRETRAIN = 'MMPretrain (pillow resize)'
FUSED = 'DecodeRandomResizedCrop (fused)'

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def parse_args():
    parser = argparse.ArgumentParser(
        description='Benchmark the pre-training data pipelines on one core '
        'and through data loader workers')
    parser.add_argument(
        '--data-dir',
        help='folder of images to read (searched recursively); by default '
        'JPEGs are generated into a temporary folder')
    parser.add_argument(
        '--num-images',
        type=int,
        default=300,
        help='images to generate, or the most to take from --data-dir')
    parser.add_argument(
        '--size', type=int, default=128, help='output crop size')
    parser.add_argument(
        '--repeats',
        type=int,
        default=11,
        help='timed passes over the images per pipeline (after one '
        'warm-up pass); the median is reported')
    parser.add_argument(
        '--workers',
        type=int,
        nargs='*',
        help='data loader workers to measure (none: skip the loader '
        'part); default 1, 2 and the powers of two up to the cores this '
        'process may use')
    parser.add_argument(
        '--batch-size', type=int, default=64, help='data loader batch size')
    parser.add_argument(
        '--loader-repeats',
        type=int,
        default=4,
        help='times the images are repeated in one data loader epoch')
    parser.add_argument(
        '--epochs',
        type=int,
        default=3,
        help='timed data loader epochs (after one warm-up epoch, which '
        'starts the workers); the median is reported')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the images and crops')
    parser.add_argument('--json', help='also write the results to this file')
    return parser.parse_args()


def usable_cores() -> int:
    return len(os.sched_getaffinity(0))


def default_workers() -> list:
    workers = [1, 2]
    while workers[-1] * 2 <= usable_cores():
        workers.append(workers[-1] * 2)
    return workers


def synthetic_jpeg(index: int) -> bytes:
    """A 500x375 photo-like JPEG at quality 90."""
    buf = io.BytesIO()
    photo_like_image(index).save(buf, format='JPEG', quality=90)
    return buf.getvalue()


def write_images(folder: str, num: int, seed: int) -> list:
    paths = []
    for i in range(num):
        path = osp.join(folder, f'{i:05d}.jpg')
        with open(path, 'wb') as f:
            f.write(synthetic_jpeg(seed * 1000003 + i))
        paths.append(path)
    return paths


def list_images(folder: str, num: int) -> list:
    paths = []
    for root, _, files in sorted(os.walk(folder)):
        paths += [
            osp.join(root, f) for f in sorted(files)
            if f.lower().endswith(IMAGE_EXTS)
        ]
    if not paths:
        raise SystemExit(f'no images found under {folder}')
    return paths[:num]


def build_pipelines(size: int) -> dict:
    tail = [dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')]
    crop = dict(
        type='RandomResizedCrop',
        scale=size,
        crop_ratio_range=(0.2, 1.0),
        interpolation='bicubic')
    return {
        MMPRETRAIN:
        [dict(type='LoadImageFromFile'),
         dict(crop, backend='pillow')] + tail,
        'MMPretrain (cv2 resize)':
        [dict(type='LoadImageFromFile'),
         dict(crop, backend='cv2')] + tail,
        FUSED: [
            dict(
                type='DecodeRandomResizedCrop',
                scale=size,
                crop_ratio_range=(0.2, 1.0))
        ] + tail,
    }


def run_pass(pipeline: Compose,
             paths: list,
             seed: int,
             clock=time.perf_counter) -> float:
    """Seconds (of ``clock``) to run ``pipeline`` on every image."""
    # The same seed for every pipeline: all draw the same crops and flips.
    np.random.seed(seed)
    start = clock()
    for path in paths:
        out = pipeline(dict(img_path=path))
    elapsed = clock() - start
    assert out['inputs'].shape[0] == 3
    return elapsed


def psnr(a, b) -> float:
    """PSNR (dB) of two images of 0-255 values, arrays or CPU tensors."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64))**2)
    return float(10 * np.log10(255.**2 / max(mse, 1e-10)))


def psnr_against(reference: Compose, pipelines: dict, paths: list,
                 seed: int) -> dict:
    """PSNR (dB) of each pipeline's image against ``reference``'s, per
    image (name -> list), from the same seed."""

    def images(pipeline):
        np.random.seed(seed)
        return [pipeline(dict(img_path=p))['inputs'] for p in paths]

    expected = images(reference)
    return {
        name: [psnr(a, b) for a, b in zip(images(pipeline), expected)]
        for name, pipeline in pipelines.items()
    }


def time_pipelines(pipelines: dict,
                   paths: list,
                   repeats: int,
                   seed: int,
                   clock=time.perf_counter) -> dict:
    """Seconds of each of ``repeats`` passes per pipeline (name -> list),
    after a warm-up pass; the passes are interleaved across the
    pipelines, so that a drift of the machine's speed affects all alike."""
    for pipeline in pipelines.values():  # file cache, allocators
        run_pass(pipeline, paths, seed, clock)
    times = {name: [] for name in pipelines}
    for _ in range(repeats):
        for name, pipeline in pipelines.items():
            times[name].append(run_pass(pipeline, paths, seed, clock))
    return times


def build_loader(pipeline: list, ann_file: str, workers: int, batch_size: int,
                 repeats: int, seed: int):
    """The pre-training config's data loader, on the images listed in
    ``ann_file`` (repeated ``repeats`` times) with ``pipeline``."""
    cfg = Config.fromfile(PRETRAIN_DATA).train_dataloader
    cfg.update(
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=False,
        persistent_workers=workers > 0)
    cfg.dataset.dataset = dict(
        type='RepeatDataset',
        times=repeats,
        dataset=dict(
            type='CustomDataset',
            ann_file=ann_file,
            with_label=False,
            pipeline=pipeline))
    return Runner.build_dataloader(cfg, seed=seed)


def loader_rate(loader, epochs: int) -> float:
    """Images/s of the median of ``epochs`` epochs after a warm-up one."""
    rates = []
    for epoch in range(epochs + 1):
        loader.sampler.set_epoch(epoch)
        start, images = time.perf_counter(), 0
        for batch in loader:
            images += len(batch['inputs'])
        if epoch:
            rates.append(images / (time.perf_counter() - start))
    return statistics.median(rates)


def print_table(header: list, rows: list) -> None:
    print('| ' + ' | '.join(header) + ' |')
    print('|---|' + '---:|' * (len(header) - 1))
    for row in rows:
        print('| ' + ' | '.join(row) + ' |')


def main():
    args = parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    init_default_scope('mmpretrain')
    workers = default_workers() if args.workers is None else args.workers

    tmp = tempfile.TemporaryDirectory(prefix='pipeline_benchmark_')
    if args.data_dir:
        paths = list_images(args.data_dir, args.num_images)
    else:
        paths = write_images(tmp.name, args.num_images, args.seed)
    sizes = [osp.getsize(p) for p in paths]
    with Image.open(paths[0]) as first:
        first_size = first.size
    print(f'{len(paths)} images, {np.mean(sizes) / 1024:.0f} KB on average, '
          f'the first {first_size[0]}x{first_size[1]}; output {args.size} '
          f'px; 1 thread, {args.repeats} timed passes after a warm-up pass')

    configs = build_pipelines(args.size)
    pipelines = {n: Compose(c) for n, c in configs.items()}
    times = time_pipelines(pipelines, paths, args.repeats, args.seed)
    reference = pipelines.pop(MMPRETRAIN)
    quality = psnr_against(reference, pipelines, paths, args.seed)
    base = statistics.median(times[MMPRETRAIN])
    rows = []
    for name, ts in times.items():
        median = statistics.median(ts)
        values = quality.get(name)  # none for the reference itself
        rows.append(
            dict(
                pipeline=name,
                ms_per_image=median / len(paths) * 1e3,
                images_per_s=len(paths) / median,
                speedup_vs_pillow=base / median,
                psnr_vs_pillow_median_db=statistics.median(values)
                if values else None,
                psnr_vs_pillow_min_db=min(values) if values else None,
                pass_seconds=ts))
    print()
    print_table([
        'pipeline', 'ms / image', 'images / s', 'speed-up vs (1)',
        'PSNR vs (1), median / min (dB)'
    ], [[
        f"({i}) {r['pipeline']}", f"{r['ms_per_image']:.2f}",
        f"{r['images_per_s']:.0f}", f"{r['speedup_vs_pillow']:.2f}x",
        f"{r['psnr_vs_pillow_median_db']:.1f} / "
        f"{r['psnr_vs_pillow_min_db']:.1f}"
        if r['psnr_vs_pillow_min_db'] is not None else '-'
    ] for i, r in enumerate(rows, 1)])

    loader_rows = []
    if workers:
        ann_file = osp.join(tmp.name, 'images.txt')
        with open(ann_file, 'w') as f:
            f.write('\n'.join(osp.abspath(p) for p in paths) + '\n')
        cores = usable_cores()
        print(f'\nData loader of {osp.relpath(PRETRAIN_DATA, REPO)}: batch '
              f'{args.batch_size}, {len(paths) * args.loader_repeats} images '
              f'per epoch, median of {args.epochs} epochs after a warm-up '
              f'one; {cores} cores usable\n')
        for n in workers:
            rates = {
                name:
                loader_rate(
                    build_loader(configs[name], ann_file, n, args.batch_size,
                                 args.loader_repeats, args.seed), args.epochs)
                for name in (MMPRETRAIN, FUSED)
            }
            for name, rate in rates.items():
                loader_rows.append(
                    dict(
                        pipeline=name,
                        workers=n,
                        images_per_s=rate,
                        images_per_s_per_core=rate / min(n, cores),
                        speedup_vs_pillow=rate / rates[MMPRETRAIN]))
        print_table([
            'pipeline', 'workers', 'images / s', 'images / s per core',
            'speed-up vs MMPretrain'
        ], [[
            r['pipeline'],
            str(r['workers']), f"{r['images_per_s']:.0f}",
            f"{r['images_per_s_per_core']:.0f}",
            f"{r['speedup_vs_pillow']:.2f}x"
        ] for r in loader_rows])
    tmp.cleanup()

    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(
                dict(
                    num_images=len(paths),
                    mean_file_kb=float(np.mean(sizes) / 1024),
                    size=args.size,
                    repeats=args.repeats,
                    data_dir=args.data_dir,
                    cpu=platform.processor() or platform.machine(),
                    cores=usable_cores(),
                    results=rows,
                    loader=dict(
                        batch_size=args.batch_size,
                        images_per_epoch=len(paths) * args.loader_repeats,
                        epochs=args.epochs,
                        results=loader_rows)),
                f,
                indent=2)
        print(f'\nwrote {args.json}')


if __name__ == '__main__':
    main()
