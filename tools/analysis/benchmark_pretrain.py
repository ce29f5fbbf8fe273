"""Time whole pre-training steps of FastMIM against MMPretrain's MIM methods.

Every method is built from its own config file (FastMIM from this toolkit,
MAE, MaskFeat and SimMIM from the configs shipped inside the mmpretrain
package; only their models and optimisers are used) and trained on random
images already in memory, so the data loader plays no part. One training
step is forward, backward and optimiser step through ``model.train_step``.
Rounds are interleaved between methods and medians reported.

Per method: images/s, step time, peak memory, training FLOPs per image
(forward + backward, counted with ``torch.utils.flop_counter``) and each
ratio against the FastMIM model of the same family. Peak memory is the CUDA
allocator's peak on GPU, and on CPU the peak resident memory of a fresh
process per method (``--mem-batch`` images, where activations dominate).

Example::

    python tools/analysis/benchmark_pretrain.py                 # CPU
    python tools/analysis/benchmark_pretrain.py --device cuda --batch 64 \\
        --mem-batch 128 --amp --steps 20
"""
import argparse
import json
import os.path as osp
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext

import mmpretrain
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS, TRANSFORMS
from mmpretrain.structures import DataSample
from torch.utils.flop_counter import FlopCounterMode

import fastmim_mm  # noqa: F401
from fastmim_mm.engine.input_size import train_pipeline

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MMPRETRAIN_CONFIGS = osp.join(
    osp.dirname(mmpretrain.__file__), '.mim', 'configs')

# name: (config, input size, FastMIM model it is compared with)
METHODS = {
    'fastmim_vit-b@128': (osp.join(
        ROOT, 'configs/fastmim/'
        'fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px.py'), 128,
                          None),
    'fastmim_swin-b@128': (osp.join(
        ROOT, 'configs/fastmim/'
        'fastmim_swin-base-w4_8xb256-amp-coslr-400e_in1k-128px.py'), 128,
                           None),
    'mae_vit-b@224':
    (osp.join(MMPRETRAIN_CONFIGS,
              'mae/mae_vit-base-p16_8xb512-amp-coslr-800e_in1k.py'), 224,
     'fastmim_vit-b@128'),
    'maskfeat_vit-b@224':
    (osp.join(MMPRETRAIN_CONFIGS,
              'maskfeat/maskfeat_vit-base-p16_8xb256-amp-coslr-300e_in1k.py'),
     224, 'fastmim_vit-b@128'),
    'simmim_swin-b@192': (osp.join(
        MMPRETRAIN_CONFIGS,
        'simmim/simmim_swin-base-w6_8xb256-amp-coslr-100e_in1k-192px.py'), 192,
                          'fastmim_swin-b@128'),
}

# What the issue asks this machine to show (speed ratio = FastMIM images/s
# over the other method's).
TARGETS = {
    'mae_vit-b@224': 1.5,
    'maskfeat_vit-b@224': 2.6,
    'simmim_swin-b@192': 2.0,
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument(
        '--batch', type=int, default=8, help='images per step for timing')
    parser.add_argument(
        '--mem-batch',
        type=int,
        default=32,
        help='images per step for peak memory')
    parser.add_argument(
        '--steps',
        type=int,
        default=3,
        help='timed rounds (after --warmup rounds)')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument(
        '--amp',
        action='store_true',
        help='autocast: bf16 where supported, else fp16')
    parser.add_argument(
        '--compile',
        action='store_true',
        help='torch.compile every model first')
    parser.add_argument(
        '--methods',
        default=','.join(METHODS),
        help='comma-separated subset of: ' + ', '.join(METHODS))
    parser.add_argument(
        '--no-memory',
        action='store_true',
        help='skip the peak-memory measurement')
    parser.add_argument('--out-json', help='write the results here')
    parser.add_argument('--worker-memory', help=argparse.SUPPRESS)
    return parser.parse_args()


def amp_dtype(device: str) -> torch.dtype:
    if device == 'cuda':
        return (torch.bfloat16
                if torch.cuda.is_bf16_supported() else torch.float16)
    return torch.bfloat16


class Method:
    """One model with its optimiser and a fixed batch, ready to step."""

    def __init__(self, name: str, args, batch: int):
        config, self.size, self.baseline = METHODS[name]
        self.name = name
        cfg = Config.fromfile(config)
        model_cfg = cfg.model
        if 'data_preprocessor' in cfg and 'data_preprocessor' not in \
                model_cfg:
            model_cfg.data_preprocessor = cfg.data_preprocessor
        self.device = torch.device(args.device)
        self.model = MODELS.build(model_cfg).to(self.device)
        self.model.init_weights()
        self.model.train()
        optim_cfg = cfg.optim_wrapper.copy()
        # Autocast is applied around the step below, the same for every
        # method; the optimiser itself stays a plain (fp32) one.
        for key in ('loss_scale', 'dtype'):
            optim_cfg.pop(key, None)
        optim_cfg.type = 'OptimWrapper'
        self.optim_wrapper = build_optim_wrapper(self.model, optim_cfg)
        if args.compile:
            self.model = torch.compile(self.model)
        self.autocast = (
            torch.autocast(args.device, dtype=amp_dtype(args.device))
            if args.amp else nullcontext())
        self.mask_transform = next(
            (TRANSFORMS.build(t)
             for t in train_pipeline(cfg) if t.type.endswith('MaskGenerator')),
            None)
        self.data = self.make_batch(batch)

    def make_batch(self, batch: int) -> dict:
        g = torch.Generator().manual_seed(0)
        inputs = torch.randint(
            0,
            256, (batch, 3, self.size, self.size),
            generator=g,
            dtype=torch.uint8)
        samples = []
        for _ in range(batch):
            sample = DataSample()
            if self.mask_transform is not None:  # SimMIM, MaskFeat
                mask = self.mask_transform({})['mask']
                sample.set_mask(torch.as_tensor(mask))
            samples.append(sample)
        return dict(inputs=inputs.to(self.device), data_samples=samples)

    def step(self) -> float:
        self.sync()
        start = time.perf_counter()
        with self.autocast:
            self.model.train_step(self.data, self.optim_wrapper)
        self.sync()
        return time.perf_counter() - start

    def sync(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize()

    def flops_per_image(self) -> float:
        data, self.data = self.data, self.make_batch(2)
        with FlopCounterMode(display=False) as counter:
            self.step()
        self.data = data
        return counter.get_total_flops() / 2


def fastmim_overhead(method: Method, rounds: int) -> float:
    """Seconds for masking + HOG target of one batch (FastMIM only)."""
    model = method.model
    inputs = model.data_preprocessor(method.data, True)['inputs']
    B, _, H, W = inputs.shape
    times = []
    for _ in range(rounds):
        method.sync()
        start = time.perf_counter()
        mask = model.mask_generator(B, H, W, device=inputs.device)
        model.mask_input(inputs, mask)
        model.target_generator.block_targets(inputs, model.mask_patch_size)
        method.sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_memory(name: str, args) -> float:
    """Peak memory in MiB of one method at ``--mem-batch`` images."""
    if args.device == 'cuda':
        method = Method(name, args, args.mem_batch)
        method.step()  # optimiser state allocated
        torch.cuda.reset_peak_memory_stats()
        method.step()
        peak = torch.cuda.max_memory_allocated() / 2**20
        del method
        torch.cuda.empty_cache()
        return peak
    cmd = [
        sys.executable, __file__, '--worker-memory', name, '--device', 'cpu',
        '--mem-batch',
        str(args.mem_batch)
    ] + (['--amp'] if args.amp else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])['peak_mib']


def worker_memory(args) -> None:
    method = Method(args.worker_memory, args, args.mem_batch)
    for _ in range(2):  # the second step holds optimiser state as well
        method.step()
    # VmHWM, not getrusage's ru_maxrss: the latter keeps the high-water
    # mark of the parent process this one was forked from.
    with open('/proc/self/status') as f:
        peak_kib = next(
            int(line.split()[1]) for line in f if line.startswith('VmHWM:'))
    print(json.dumps(dict(peak_mib=peak_kib / 1024)))


def main():
    args = parse_args()
    init_default_scope('mmpretrain')
    # Keep the weight-initialisation reports of five models off the screen.
    MMLogger.get_instance('benchmark_pretrain', log_level='WARNING')
    if args.worker_memory:
        worker_memory(args)
        return
    if args.device == 'cuda' and not torch.cuda.is_available():
        sys.exit('benchmark_pretrain.py: --device cuda but no CUDA device.')
    names = [n.strip() for n in args.methods.split(',') if n.strip()]
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        sys.exit(f'benchmark_pretrain.py: unknown methods {unknown}; '
                 f'choose from {list(METHODS)}')

    torch.manual_seed(0)
    methods = {n: Method(n, args, args.batch) for n in names}
    flops = {n: m.flops_per_image() for n, m in methods.items()}
    times = {n: [] for n in names}
    for r in range(args.warmup + args.steps):
        for name, method in methods.items():  # interleaved rounds
            t = method.step()
            if r >= args.warmup:
                times[name].append(t)
        print(
            f'round {r + 1}/{args.warmup + args.steps}: ' +
            ', '.join(f'{n} {times[n][-1] if times[n] else t:.2f}s'
                      for n in names),
            flush=True)
    overhead = {
        n: fastmim_overhead(m, args.steps)
        for n, m in methods.items() if n.startswith('fastmim')
    }
    memory = {}
    if not args.no_memory:
        del methods
        for name in names:
            memory[name] = measure_memory(name, args)
            print(f'peak memory {name}: {memory[name]:.0f} MiB', flush=True)

    results = {}
    for name in names:
        step = statistics.median(times[name])
        row = dict(
            step_s=step,
            images_per_s=args.batch / step,
            gflops_per_image=flops[name] / 1e9,
            peak_mib=memory.get(name))
        if name in overhead:
            row['mask_and_target_share'] = overhead[name] / step
        results[name] = row
    for name, row in results.items():
        base = METHODS[name][2]
        if base in results:
            ref = results[base]
            row['speedup_of_fastmim'] = ref['images_per_s'] / \
                row['images_per_s']
            row['flop_ratio'] = row['gflops_per_image'] / \
                ref['gflops_per_image']
            row['speedup_over_flop_ratio'] = row['speedup_of_fastmim'] / \
                row['flop_ratio']
            if row['peak_mib'] and ref['peak_mib']:
                row['fastmim_memory_ratio'] = ref['peak_mib'] / \
                    row['peak_mib']

    device = (
        torch.cuda.get_device_name() if args.device == 'cuda' else
        f'CPU, {torch.get_num_threads()} threads')
    print(render_table(results, args, device))
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(
                dict(
                    device=device,
                    batch=args.batch,
                    mem_batch=args.mem_batch,
                    steps=args.steps,
                    amp=args.amp,
                    compile=args.compile,
                    results=results),
                f,
                indent=2)
        print(f'wrote {args.out_json}')


def render_table(results: dict, args, device: str) -> str:

    def fmt(value, spec):
        return '-' if value is None else format(value, spec)

    lines = [
        f'\nDevice: {device}; batch {args.batch} (memory: batch '
        f'{args.mem_batch}); {args.steps} timed rounds; amp={args.amp}, '
        f'compile={args.compile}\n',
        '| method | step (s) | images/s | GFLOPs/img (train) | peak MiB | '
        'FastMIM speed-up | FLOP ratio | speed-up / FLOP ratio | '
        'FastMIM memory ratio |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
    ]
    for name, r in results.items():
        lines.append(
            f'| {name} | {r["step_s"]:.3f} | {r["images_per_s"]:.1f} | '
            f'{r["gflops_per_image"]:.1f} | {fmt(r["peak_mib"], ".0f")} | '
            f'{fmt(r.get("speedup_of_fastmim"), ".2f")} | '
            f'{fmt(r.get("flop_ratio"), ".2f")} | '
            f'{fmt(r.get("speedup_over_flop_ratio"), ".0%")} | '
            f'{fmt(r.get("fastmim_memory_ratio"), ".2f")} |')
    for name, r in results.items():
        if 'mask_and_target_share' in r:
            lines.append(f'\n{name}: masking + HOG target = '
                         f'{r["mask_and_target_share"]:.1%} of a step')
    checks = []
    for name, target in TARGETS.items():
        r = results.get(name)
        if r and 'speedup_of_fastmim' in r:
            checks.append(
                f'- FastMIM vs {name}: {r["speedup_of_fastmim"]:.2f}x '
                f'(target >= {target}x), {r["speedup_over_flop_ratio"]:.0%}'
                f' of the FLOP ratio (target >= 85%)')
    if checks:
        lines += ['', 'Targets:'] + checks
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
