"""Images per second of the pre-training data pipeline on one CPU core.

Compares MMPretrain's MAE-style pipeline (LoadImageFromFile +
RandomResizedCrop with the pillow or the cv2 backend + RandomFlip +
PackInputs) with the fused ``DecodeRandomResizedCrop`` + RandomFlip +
PackInputs, on ImageNet-sized JPEGs (generated, or a folder of your own).

Example::

    python tools/analysis/benchmark_pipeline.py --num-images 300 \\
        --repeats 5 --json work_dirs/pipeline_benchmark.json
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
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from PIL import Image

import fastmim_mm  # noqa: F401  (registers DecodeRandomResizedCrop)

sys.path.insert(
    0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'misc'))
from synthetic_imagenet import photo_like_image  # noqa: E402

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def parse_args():
    parser = argparse.ArgumentParser(
        description='Benchmark the pre-training data pipelines on one core')
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
        default=5,
        help='timed passes over the images per pipeline (after one '
        'warm-up pass); the median is reported')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the images and crops')
    parser.add_argument('--json', help='also write the results to this file')
    return parser.parse_args()


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
        'MMPretrain (pillow resize)':
        [dict(type='LoadImageFromFile'),
         dict(crop, backend='pillow')] + tail,
        'MMPretrain (cv2 resize)':
        [dict(type='LoadImageFromFile'),
         dict(crop, backend='cv2')] + tail,
        'DecodeRandomResizedCrop (fused)': [
            dict(
                type='DecodeRandomResizedCrop',
                scale=size,
                crop_ratio_range=(0.2, 1.0))
        ] + tail,
    }


def run_pass(pipeline: Compose, paths: list, seed: int) -> float:
    # The same seed for every pipeline: all draw the same crops and flips.
    np.random.seed(seed)
    start = time.perf_counter()
    for path in paths:
        out = pipeline(dict(img_path=path))
    elapsed = time.perf_counter() - start
    assert out['inputs'].shape[0] == 3
    return elapsed


def main():
    args = parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    init_default_scope('mmpretrain')

    tmp = None
    if args.data_dir:
        paths = list_images(args.data_dir, args.num_images)
    else:
        tmp = tempfile.TemporaryDirectory(prefix='pipeline_benchmark_')
        paths = write_images(tmp.name, args.num_images, args.seed)
    sizes = [osp.getsize(p) for p in paths]
    with Image.open(paths[0]) as first:
        first_size = first.size
    print(f'{len(paths)} images, {np.mean(sizes) / 1024:.0f} KB on average, '
          f'the first {first_size[0]}x{first_size[1]}; output {args.size} '
          f'px; 1 thread, {args.repeats} timed passes after a warm-up pass')

    pipelines = {
        name: Compose(cfg)
        for name, cfg in build_pipelines(args.size).items()
    }
    for pipeline in pipelines.values():  # warm-up (file cache, allocators)
        run_pass(pipeline, paths, args.seed)
    times = {name: [] for name in pipelines}
    for _ in range(args.repeats):
        for name, pipeline in pipelines.items():  # interleaved against drift
            times[name].append(run_pass(pipeline, paths, args.seed))
    if tmp is not None:
        tmp.cleanup()

    base = statistics.median(next(iter(times.values())))
    rows = []
    for name, ts in times.items():
        median = statistics.median(ts)
        rows.append(
            dict(
                pipeline=name,
                ms_per_image=median / len(paths) * 1e3,
                images_per_s=len(paths) / median,
                speedup_vs_pillow=base / median,
                pass_seconds=ts))
    print()
    print('| pipeline | ms / image | images / s | speed-up vs (1) |')
    print('|---|---:|---:|---:|')
    for i, row in enumerate(rows, 1):
        print(f"| ({i}) {row['pipeline']} | {row['ms_per_image']:.2f} | "
              f"{row['images_per_s']:.0f} | "
              f"{row['speedup_vs_pillow']:.2f}x |")
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
                    results=rows),
                f,
                indent=2)
        print(f'\nwrote {args.json}')


if __name__ == '__main__':
    main()
