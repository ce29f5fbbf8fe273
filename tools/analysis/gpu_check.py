"""Check the toolkit on one GPU and print one table (tools/analysis/
gpu_check.sh sets up the packages first; run that).

Rows: mmcv's detection ops on the device; Mask R-CNN (Swin-B, the COCO
benchmark config) and UperNet (ViT-B, the ADE20K config) on generated
datasets, a few training iterations and one evaluation each through
tools/train.py; ``benchmark_pretrain.py`` (FastMIM ViT-B / Swin-B against
MMPretrain's MAE, MaskFeat and SimMIM); end-to-end FastMIM ViT-B@128
pre-training through tools/train.py on generated ImageNet-sized JPEGs, with
the CPU decoding path and the GPU one, next to the bare model's steps; one
NCCL process through tools/dist_train.sh.

``--device cpu`` is a rehearsal on a machine without a GPU (a test covers
it): the same steps, with tiny models and data where the row name says so
(the benchmark and bare-model rows keep the real ViT-B, at batch 1 or 2);
its table says it is a CPU rehearsal, and its figures show that every path
works, not how fast a GPU is.
"""
import argparse
import glob
import json
import multiprocessing
import os
import os.path as osp
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import mmcv
import torch
from mmcv.ops import RoIAlign, batched_nms
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path[:0] = [ROOT, osp.join(ROOT, 'tools', 'misc')]

# isort: off
from fastmim_mm.compat.mmcv_ops import (  # noqa: E402
    mmcv_has_cuda_ops, route_mmcv_ops_to_torchvision)
from fastmim_mm.engine.runner import RunConsole  # noqa: E402
from synthetic_downstream import (  # noqa: E402
    make_ade20k, make_coco_instances)
from synthetic_imagenet import (  # noqa: E402
    make_imagenet_folder, photo_like_image)
from benchmark_pretrain import METHODS as BENCHMARK_METHODS  # noqa: E402
from tiny_transfer_configs import (  # noqa: E402
    shrink_detection_config, shrink_segmentation_config)
# isort: on

CONFIGS = osp.join(ROOT, 'configs', 'fastmim')
DET = osp.join(
    CONFIGS, 'benchmarks', 'mmdetection',
    'mask-rcnn_fastmim-swin-base-w7_fpn_rpn-2conv_4conv1fc_syncbn-all_'
    '8xb4-lsj-scp-3x_coco.py')
SEG = osp.join(CONFIGS, 'benchmarks', 'mmsegmentation',
               'upernet_fastmim-vit-base-p16_8xb2-160k_ade20k-512x512.py')
PRETRAIN = osp.join(
    CONFIGS, 'fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px.py')
PRETRAIN_GPU_DECODE = PRETRAIN[:-3] + '_gpu-decode.py'
DEMO = osp.join(CONFIGS, 'fastmim_vit-tiny-p16_1xb16-coslr-14e_demo-128px.py')

# Sizes per device: the real models and batches on a GPU, tiny ones on a
# CPU (the same code paths, in about a minute).
PROFILES = dict(
    cuda=dict(
        coco_images=16,
        coco_size=(640, 480),
        ade_images=16,
        ade_size=(683, 512),
        seg_iters=8,
        workers=16,
        jpeg_unique=1024,
        e2e_batch=512,
        e2e_iters=30,
        e2e_warmup=8,
        bench=[
            '--batch', '128', '--mem-batch', '128', '--steps', '10',
            '--warmup', '2'
        ],
        bare=['--steps', '8', '--warmup', '2']),
    cpu=dict(
        coco_images=2,
        coco_size=(128, 96),
        ade_images=2,
        ade_size=(128, 128),
        seg_iters=1,
        workers=2,
        jpeg_unique=16,
        e2e_batch=2,
        e2e_iters=4,
        e2e_warmup=1,
        bench=[
            '--batch', '1', '--steps', '1', '--warmup', '0', '--no-memory',
            '--methods', 'fastmim_vit-b@128,'
            'mae_vit-b@224'
        ],
        bare=['--steps', '1', '--warmup', '0']))

# The tiny backbones of the CPU form: transfers, and end-to-end
# pre-training (whose encoder needs no more than 2 blocks).
TINY_VIT = dict(
    embed_dims=64, num_layers=4, num_heads=2, feedforward_channels=128)
TINY_SWIN = dict(embed_dims=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8])
E2E_TINY_VIT = dict(TINY_VIT, num_layers=2)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=['cuda', 'cpu'], default='cuda')
    parser.add_argument('--work-dir', help='default: a temporary folder')
    parser.add_argument(
        '--out',
        help='also write the table (.md), the '
        'results (.json) and the logs (.tar.gz) here')
    parser.add_argument(
        '--budget',
        type=float,
        default=540,
        help='seconds for all steps; a step that would '
        'start later is skipped')
    parser.add_argument(
        '--setup-seconds',
        type=float,
        help='time gpu_check.sh spent installing')
    parser.add_argument(
        '--skip', default='', help='comma-separated steps to leave out')
    return parser.parse_args(argv)


class Check:
    """Runs the steps, keeps their rows, renders the table."""

    def __init__(self, args):
        self.args = args
        self.p = PROFILES[args.device]
        self.work = args.work_dir or tempfile.mkdtemp(prefix='gpu_check_')
        os.makedirs(self.work, exist_ok=True)
        self.rows = []
        self.start = time.perf_counter()
        self.python = sys.executable
        self.env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(
                [ROOT] + [p for p in [os.environ.get('PYTHONPATH')] if p]),
            PYTHONUNBUFFERED='1')

    def row(self, step, status, result, seconds=None):
        self.rows.append(
            dict(step=step, status=status, result=result, seconds=seconds))
        print(
            f'[gpu_check] {step}: {status}, {result}' +
            ('' if seconds is None else f' ({seconds:.1f} s)'),
            flush=True)

    def run(self, name, cmd, timeout):
        """Run ``cmd``, its output into ``work/name.log``; return
        (returncode, seconds, last lines)."""
        log = osp.join(self.work, f'{name}.log')
        start = time.perf_counter()
        # No step may run far past the budget.
        timeout = max(
            60, min(timeout, self.args.budget + 30 - (start - self.start)))
        with open(log, 'w') as f:
            try:
                rc = subprocess.run(
                    cmd,
                    cwd=ROOT,
                    env=self.env,
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                rc = 'timeout'
        seconds = time.perf_counter() - start
        with open(log) as f:
            tail = f.read().strip().splitlines()[-3:]
        return rc, seconds, ' / '.join(tail)[-300:]

    def train(self, name, config, options, timeout, extra=()):
        """tools/train.py with ``--cfg-options``; returns (rc, seconds,
        tail, work_dir)."""
        work_dir = osp.join(self.work, name)
        cmd = [
            self.python,
            osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir',
            work_dir, *extra
        ]
        if options:
            cmd += ['--cfg-options'] + [f'{k}={v}' for k, v in options]
        return (*self.run(name, cmd, timeout), work_dir)

    def timed_out(self):
        return time.perf_counter() - self.start > self.args.budget

    # ----------------------------------------------------------------- ops
    def ops(self):
        device = self.args.device
        has_cuda = mmcv_has_cuda_ops()
        if device == 'cuda':  # as import fastmim_mm routed them
            routed, before = (() if has_cuda else ('cuda', )), None
        else:  # on a CPU machine the routing is forced, to exercise it
            routed = ('cpu', )
            before = route_mmcv_ops_to_torchvision(routed)
        start = time.perf_counter()
        g = torch.Generator().manual_seed(0)
        xy = torch.rand(2000, 2, generator=g, dtype=torch.float64) * 400
        wh = torch.rand(2000, 2, generator=g, dtype=torch.float64) * 100 + 1
        boxes = torch.cat([xy, xy + wh], 1)
        scores = torch.rand(2000, generator=g, dtype=torch.float64)
        labels = torch.randint(0, 5, (2000, ), generator=g)
        feats = torch.randn(2, 16, 50, 60, generator=g, dtype=torch.float64)
        rois = torch.cat([
            torch.randint(0, 2,
                          (300, 1), generator=g).double(), boxes[:300] / 8
        ], 1)
        layer = RoIAlign((7, 7), 1.0, sampling_ratio=0, aligned=True)

        def compute(dev):
            x = feats.to(dev).requires_grad_()
            out = layer(x, rois.to(dev))
            out.backward(torch.ones_like(out))
            # float32: mmcv's CPU nms takes nothing else.
            _, keep = batched_nms(boxes.float().to(dev),
                                  scores.float().to(dev), labels.to(dev),
                                  dict(iou_threshold=0.5))
            return out.detach().cpu(), x.grad.cpu(), keep.cpu()

        got = compute(device)
        if before is not None:
            route_mmcv_ops_to_torchvision(before)
        want = compute('cpu')  # mmcv's CPU kernels
        diff = max((a - b).abs().max().item() for a, b in zip(got, want)
                   if a.is_floating_point())
        same_keep = torch.equal(got[2], want[2])
        ok = diff < 1e-9 and same_keep
        self.row(
            'detection ops (mmcv nms, RoIAlign fwd/bwd)',
            'ok' if ok else 'FAIL',
            f'mmcv _ext has CUDA kernels: {has_cuda}; routed to '
            f'torchvision on {list(routed)}; vs mmcv CPU kernels (float64): '
            f'max |diff| {diff:.1e}, nms keep identical: {same_keep}',
            time.perf_counter() - start)

    # ------------------------------------------------------------ transfer
    def _scalars(self, work_dir):
        files = sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
        if not files:
            return [], []
        with open(files[-1]) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        train = [r for r in lines if 'loss' in r]
        val = [r for r in lines if 'loss' not in r]
        return train, val

    def _transfer_row(self, step, rc, seconds, tail, work_dir, metrics,
                      val_iters):
        train, val = self._scalars(work_dir)
        if rc != 0 or not train or not val:
            self.row(step, 'FAIL', f'exit {rc}: {tail}', seconds)
            return
        times = [r['time'] for r in train[1:]] or [train[0]['time']]
        result = val[-1]
        shown = ', '.join(f'{k} {result[k]:.3f}' for k in metrics
                          if k in result) or 'no metrics (nothing detected)'

        self.row(
            step, 'ok',
            f'{len(train)} train iters: {statistics.median(times):.3f} s/iter'
            f' (first {train[0]["time"]:.2f} s), loss {train[-1]["loss"]:.3f}'
            f'; eval of {val_iters} images: '
            f'{result.get("time", float("nan")) * val_iters:.1f} s, {shown}',
            seconds)

    def _common_options(self):
        return [
            ('default_hooks.logger.interval', 1),
            ('log_processor.window_size', 1),
            ('default_hooks.checkpoint.interval', -1),
            ('default_hooks.checkpoint.save_last', False),
            ('randomness.seed', 0),
        ]

    def detection(self):
        p = self.p
        root = make_coco_instances(
            osp.join(self.work, 'coco'),
            num_images=p['coco_images'],
            image_size=p['coco_size'],
            num_classes=80)
        cfg = Config.fromfile(DET)  # the files have COCO's classes
        train = cfg.train_dataloader
        train.num_workers = test_workers = min(p['workers'], 4)
        train.persistent_workers = False
        train.dataset.dataset.data_root = root
        test = cfg.test_dataloader
        test.dataset.data_root = root
        test.num_workers = test_workers
        test.persistent_workers = False
        cfg.val_dataloader = test
        cfg.test_evaluator.ann_file = osp.join(root, 'annotations',
                                               'instances_val2017.json')
        cfg.val_evaluator = cfg.test_evaluator
        cfg.val_cfg = dict(type='ValLoop')
        cfg.train_cfg = dict(
            type='EpochBasedTrainLoop', max_epochs=1, val_interval=1)
        cfg.model.backbone.init_cfg = None  # random weights: a speed check
        if self.args.device == 'cpu':
            shrink_detection_config(cfg, TINY_SWIN, [32, 64, 128, 256])
        config = osp.join(self.work, 'mask_rcnn.py')
        cfg.dump(config)
        rc, seconds, tail, work_dir = self.train(
            'mask_rcnn', config, self._common_options(), timeout=240)
        val_iters = p['coco_images']  # batch 1 in the test loader
        size = cfg.model.data_preprocessor.batch_augments[0].size[0]
        backbone = ('Swin-B' if self.args.device == 'cuda' else
                    f'tiny Swin ({_swin_size(TINY_SWIN)})')
        self._transfer_row(
            f'Mask R-CNN {backbone}, COCO config ({size} px LSJ)', rc, seconds,
            tail, work_dir, ['coco/bbox_mAP', 'coco/segm_mAP'], val_iters)

    def segmentation(self):
        p = self.p
        root = make_ade20k(
            osp.join(self.work, 'ade'),
            num_images=p['ade_images'],
            image_size=p['ade_size'])
        cfg = Config.fromfile(SEG)
        for key in ('train_dataloader', 'test_dataloader'):
            loader = cfg[key]
            loader.dataset.data_root = root
            loader.num_workers = min(p['workers'], 4)
            loader.persistent_workers = False
        cfg.val_dataloader = cfg.test_dataloader
        cfg.val_evaluator = cfg.test_evaluator
        cfg.val_cfg = dict(type='ValLoop')
        iters = p['seg_iters']
        cfg.train_cfg = dict(
            type='IterBasedTrainLoop', max_iters=iters, val_interval=iters)
        cfg.model.backbone.init_cfg = None
        if self.args.device == 'cpu':
            shrink_segmentation_config(cfg, TINY_VIT)
        config = osp.join(self.work, 'upernet.py')
        cfg.dump(config)
        rc, seconds, tail, work_dir = self.train(
            'upernet', config, self._common_options(), timeout=180)
        crop = cfg.model.data_preprocessor.size[0]
        backbone = ('ViT-B' if self.args.device == 'cuda' else
                    f'tiny ViT ({_vit_size(TINY_VIT)})')
        self._transfer_row(
            f'UperNet {backbone}, ADE20K config ({crop} px crops)', rc,
            seconds, tail, work_dir, ['mIoU', 'aAcc'], p['ade_images'])

    # ---------------------------------------------------------- pre-training
    def benchmark(self):
        out = osp.join(self.work, 'benchmark.json')
        cmd = [
            self.python,
            osp.join(ROOT, 'tools', 'analysis', 'benchmark_pretrain.py'),
            '--device', self.args.device, '--out-json', out, *self.p['bench']
        ]
        if self.args.device == 'cuda':
            cmd.append('--amp')
        rc, seconds, tail = self.run('benchmark_pretrain', cmd, timeout=240)
        if rc != 0:
            self.row('benchmark_pretrain.py', 'FAIL', f'exit {rc}: {tail}',
                     seconds)
            return
        with open(out) as f:
            bench = json.load(f)
        # On a CPU one step at batch 1 shows that each model runs; its
        # ratios are not the speed-ups a GPU gives.
        caveat = ('' if self.args.device == 'cuda' else
                  f' (CPU, {bench["steps"]} step at batch {bench["batch"]}: '
                  f'not a speed-up measurement)')
        for name, r in bench['results'].items():
            parts = [
                f'{_rate(r["images_per_s"])} images/s (batch '
                f'{bench["batch"]}, amp={bench["amp"]})',
                f'{r["gflops_per_image"]:.1f} GFLOPs/img'
            ]
            if r.get('peak_mib'):
                parts.append(f'peak {r["peak_mib"]:.0f} MiB (batch '
                             f'{bench["mem_batch"]})')
            if 'speedup_of_fastmim' in r:
                fastmim = BENCHMARK_METHODS[name][2]
                parts.append(
                    f'images/s of {fastmim} / images/s of {name} '
                    f'{r["speedup_of_fastmim"]:.2f}x; that / (GFLOPs of '
                    f'{name} / GFLOPs of {fastmim}) '
                    f'{r["speedup_over_flop_ratio"]:.0%}{caveat}')
            self.row(f'benchmark {name} (real model)', 'ok', '; '.join(parts))
        if bench['results']:
            self.rows[-1]['seconds'] = seconds

    def _imagenet(self):
        """``jpeg_unique`` generated 500x375 JPEGs, listed repeatedly in
        meta/train.txt to fill ``e2e_iters`` batches."""
        p = self.p
        root = osp.join(self.work, 'imagenet')
        if osp.exists(osp.join(root, 'meta', 'train.txt')):
            return root
        folder = osp.join(root, 'train', 'n00000000')
        os.makedirs(folder, exist_ok=True)
        os.makedirs(osp.join(root, 'meta'), exist_ok=True)
        with multiprocessing.Pool(min(p['workers'], os.cpu_count())) as pool:
            pool.starmap(_write_jpeg,
                         [(folder, i) for i in range(p['jpeg_unique'])])
        needed = p['e2e_batch'] * p['e2e_iters']
        with open(osp.join(root, 'meta', 'train.txt'), 'w') as f:
            for i in range(needed):
                f.write(f'n00000000/{i % p["jpeg_unique"]:06d}.JPEG 0\n')
        return root

    def _pretrain_options(self, root):
        p = self.p
        options = self._common_options() + [
            ('train_dataloader.dataset.dataset.data_root', root),
            ('train_dataloader.batch_size', p['e2e_batch']),
            ('train_dataloader.num_workers', p['workers']),
            ('train_cfg.max_epochs', 1),
            ('custom_hooks', '[]'),
        ]
        if self.args.device == 'cpu':
            options += [(f'model.backbone.arch.{k}', v)
                        for k, v in E2E_TINY_VIT.items()]
            options.append(
                ('model.neck.in_channels', E2E_TINY_VIT['embed_dims']))
        return options

    def pretrain(self, gpu_decode):
        p = self.p
        root = self._imagenet()
        name = 'pretrain_gpu_decode' if gpu_decode else 'pretrain_cpu_decode'
        config = PRETRAIN_GPU_DECODE if gpu_decode else PRETRAIN
        extra = ['--amp'] if self.args.device == 'cuda' else []
        rc, seconds, tail, work_dir = self.train(
            name,
            config,
            self._pretrain_options(root),
            timeout=180,
            extra=extra)
        train, _ = self._scalars(work_dir)
        cuda = self.args.device == 'cuda'
        where = 'GPU (nvJPEG)' if cuda else 'device (here the CPU)'
        model = 'ViT-B' if cuda else f'tiny ViT ({_vit_size(E2E_TINY_VIT)})'
        step = (f'FastMIM {model}@128 end to end, decoding on ' +
                (where if gpu_decode else 'CPU workers') +
                f', {p["workers"]} workers')
        steady = train[p['e2e_warmup']:]
        if rc != 0 or not steady:
            self.row(step, 'FAIL', f'exit {rc}: {tail}', seconds)
            return
        t = statistics.median(r['time'] for r in steady)
        wait = statistics.median(r['data_time'] for r in steady)
        self.row(
            step, 'ok',
            f'{_rate(p["e2e_batch"] / t)} images/s (median of iters '
            f'{p["e2e_warmup"] + 1}-{len(train)}, batch {p["e2e_batch"]}, '
            f'{t:.3f} s/iter; time waiting for data / time per iter '
            f'{wait / t:.0%}), loss {train[-1]["loss"]:.3f}', seconds)

    def decode(self):
        """The preprocessor's decode + crop + resize + flip alone, on
        batches already read (what the training step waits for)."""
        init_default_scope('mmpretrain')
        root = self._imagenet()
        cfg = Config.fromfile(PRETRAIN_GPU_DECODE)
        pipeline = Compose(cfg.train_dataloader.dataset.dataset.pipeline)
        batch = self.p['e2e_batch']
        files = sorted(glob.glob(osp.join(root, 'train', '*', '*.JPEG')))
        data = pseudo_collate([
            pipeline(dict(img_path=files[i % len(files)]))
            for i in range(batch)
        ])
        preprocessor = MODELS.build(cfg.model.data_preprocessor).to(
            self.args.device)
        sync = (
            torch.cuda.synchronize
            if self.args.device == 'cuda' else lambda: None)
        times = []
        for _ in range(6):
            sync()
            start = time.perf_counter()
            preprocessor(data, training=True)
            sync()
            times.append(time.perf_counter() - start)
        t = statistics.median(times[1:])
        self.row(
            'DeviceDecodeDataPreprocessor alone (decode, crop, resize, '
            'flip, normalise)', 'ok',
            f'{_rate(batch / t)} images/s (batch {batch}, {t * 1e3:.1f} '
            f'ms; first call {times[0] * 1e3:.0f} ms)', sum(times))

    def bare(self):
        out = osp.join(self.work, 'bare.json')
        cmd = [
            self.python,
            osp.join(ROOT, 'tools', 'analysis', 'benchmark_pretrain.py'),
            '--device', self.args.device, '--out-json', out, '--methods',
            'fastmim_vit-b@128', '--no-memory', '--batch',
            str(self.p['e2e_batch']), *self.p['bare']
        ]
        if self.args.device == 'cuda':
            cmd.append('--amp')
        rc, seconds, tail = self.run('bare_model', cmd, timeout=120)
        step = ('FastMIM ViT-B@128 bare model steps (real model, no data '
                'loading)')
        if rc != 0:
            self.row(step, 'FAIL', f'exit {rc}: {tail}', seconds)
            return
        with open(out) as f:
            r = json.load(f)['results']['fastmim_vit-b@128']
        self.row(
            step, 'ok', f'{_rate(r["images_per_s"])} images/s (batch '
            f'{self.p["e2e_batch"]})', seconds)

    def nccl(self):
        root = osp.join(self.work, 'demo')
        if not osp.exists(root):
            make_imagenet_folder(
                root, num_classes=2, images_per_class=8, image_size=(160, 160))
        work_dir = osp.join(self.work, 'dist')
        port = 29500 + os.getpid() % 1000
        cmd = [
            'bash',
            osp.join(ROOT, 'tools', 'dist_train.sh'), DEMO, '1', '--work-dir',
            work_dir, '--cfg-options',
            f'train_dataloader.dataset.dataset.data_root={root}',
            'train_cfg.max_epochs=1', 'custom_hooks=[]',
            'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=-1',
            'default_hooks.checkpoint.save_last=False'
        ]
        env = self.env
        self.env = dict(env, PORT=str(port))
        try:
            rc, seconds, tail = self.run('dist_train', cmd, timeout=120)
        finally:
            self.env = env
        train, _ = self._scalars(work_dir)
        logs = glob.glob(osp.join(work_dir, '*', '*.log'))
        text = open(logs[-1]).read() if logs else ''
        backend = ('nccl' if "backend='nccl'" in text else
                   'gloo' if "backend='gloo'" in text else '?')
        step = 'tools/dist_train.sh, 1 process'
        if rc != 0 or not train or 'Distributed training: True' not in text:
            self.row(step, 'FAIL', f'exit {rc}: {tail}', seconds)
            return
        self.row(
            step, 'ok', f'backend {backend}, {len(train)} iters, loss '
            f'{train[-1]["loss"]:.3f}', seconds)

    # ---------------------------------------------------------------- table
    def table(self):
        args = self.args
        if args.device == 'cuda':
            device = (f'{torch.cuda.get_device_name()}, '
                      f'{os.cpu_count()} CPU cores')
            head = f'gpu_check on {device}'
        else:
            head = (f'gpu_check, CPU rehearsal (no GPU; {os.cpu_count()} '
                    f'cores): tiny models and data where a row says so, '
                    f'one or two steps each; the figures show that each '
                    f'path runs, not what a GPU does')
        head += (f'; torch {torch.__version__}, mmcv {mmcv.__version__}, '
                 f'Python {sys.version.split()[0]}')
        if args.setup_seconds is not None:
            head += f'; set-up {args.setup_seconds:.0f} s'
        head += f'; checks {time.perf_counter() - self.start:.0f} s'
        lines = [
            head, '', '| check | status | result | s |',
            '| --- | --- | --- | ---: |'
        ]
        for r in self.rows:
            s = '' if r['seconds'] is None else f'{r["seconds"]:.0f}'
            lines.append(f'| {r["step"]} | {r["status"]} | '
                         f'{r["result"]} | {s} |')
        return '\n'.join(lines)

    def write(self, table):
        out = self.args.out
        if not out:
            return
        os.makedirs(out, exist_ok=True)
        with open(osp.join(out, 'gpu_check.md'), 'w') as f:
            f.write(table + '\n')
        with open(osp.join(out, 'gpu_check.json'), 'w') as f:
            json.dump(self.rows, f, indent=2)
        logs = osp.join(self.work, 'logs')
        os.makedirs(logs, exist_ok=True)
        for log in glob.glob(osp.join(self.work, '*.log')) + glob.glob(
                osp.join(self.work, '*', '*', '*.log')):
            shutil.copy(log, logs)
        shutil.make_archive(osp.join(out, 'gpu_check_logs'), 'gztar', logs)


def _rate(images_per_s):
    return (f'{images_per_s:.0f}'
            if images_per_s >= 100 else f'{images_per_s:.3g}')


def _write_jpeg(folder, i):
    photo_like_image(i).save(osp.join(folder, f'{i:06d}.JPEG'), quality=90)


def _vit_size(arch: dict) -> str:
    return f'{arch["num_layers"]} blocks, {arch["embed_dims"]} wide'


def _swin_size(arch: dict) -> str:
    depths = '-'.join(map(str, arch['depths']))
    return f'depths {depths}, {arch["embed_dims"]} wide'


# Cheap and essential first: what the budget cuts off comes last.
STEPS = ('ops', 'nccl', 'detection', 'segmentation', 'pretrain_cpu',
         'pretrain_gpu', 'decode', 'bare', 'benchmark')


def main(argv=None):
    # The configs it reads import the stack, which warns as in a run.
    RunConsole.install()
    args = parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        sys.exit('gpu_check.py: --device cuda but torch sees no CUDA device')
    check = Check(args)
    skip = {s.strip() for s in args.skip.split(',') if s.strip()}
    actions = dict(
        ops=check.ops,
        detection=check.detection,
        segmentation=check.segmentation,
        benchmark=check.benchmark,
        pretrain_cpu=lambda: check.pretrain(False),
        pretrain_gpu=lambda: check.pretrain(True),
        decode=check.decode,
        bare=check.bare,
        nccl=check.nccl)
    for name in STEPS:
        if name in skip:
            continue
        if check.timed_out():
            check.row(name, 'skipped', f'over the {args.budget:.0f} s budget')
            continue
        try:
            actions[name]()
        except Exception as e:  # one failing step must not hide the others
            check.row(name, 'FAIL', f'{type(e).__name__}: {e}'[:300])
    table = check.table()
    print('\n' + table, flush=True)
    check.write(table)
    failed = [r['step'] for r in check.rows if r['status'] == 'FAIL']
    if failed:
        sys.exit(1)


if __name__ == '__main__':
    main()
