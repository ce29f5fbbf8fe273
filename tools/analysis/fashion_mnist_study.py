"""Fashion-MNIST study: do FastMIM's findings hold on real images?

Pre-trains one encoder (ViT, 6 blocks of width 192, patch 4) per arm with
the configs in ``configs/fastmim/study/`` through MMEngine's Runner, then
evaluates every encoder the same way at 32 px:

- kNN (k=20, cosine similarity, votes weighted by exp(sim / 0.07)) on the
  frozen, mean-pooled patch tokens of the training images against the test
  images;
- fine-tuning on 1,000 labels (the first 100 images of each class in file
  order, the same for every arm), the test accuracy recorded along the way;
  the final one is reported.

Arms: no pre-training; FastMIM-HOG at 16 and 32 px with equal epochs, and at
32 px with the wall-clock of the 16 px run; FastMIM with the pixel target at
16 and 32 px (equal epochs); MMPretrain's MAE at 32 px with the wall-clock of
FastMIM-HOG at 16 px. Equal wall-clock means equal cost measured on this
machine: the training steps of the arms are timed in interleaved rounds
(``calibration.json``) and the iteration counts follow from their ratio.

Every unit (an arm's pre-training, kNN or one fine-tuning for one seed) is
cached as JSON under ``WORK_DIR/cache``, so an interrupted study resumes where
it stopped; a fine-tuning interrupted midway goes on from its last point of
the accuracy curve (MMEngine's resume, with the random streams restored; the
augmentations after that point differ from an uninterrupted run's, and the
unit's JSON lists where it resumed). Checkpoints and logs go to
``WORK_DIR/runs`` (not needed once the JSON of every unit that uses them
exists). At the end ``results.json``,
``results.md`` and ``results.png`` are written to the work dir.

Example::

    python tools/analysis/fashion_mnist_study.py --preset quick
    python tools/analysis/fashion_mnist_study.py --preset full \\
        --work-dir docs/study
"""
import argparse
import gzip
import json
import os
import os.path as osp
import shutil
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmpretrain.datasets.mnist import read_label_file
from mmpretrain.models.utils import build_2d_sincos_position_embedding
from mmpretrain.registry import MODELS

import fastmim_mm  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(ROOT, 'configs', 'fastmim', 'study')
FINETUNE_CONFIG = 'vit-6x192-p4_fashion-mnist-1k-labels-32px.py'
DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
DEBIAN_PACKAGE = 'dataset-fashion-mnist'
IDX_FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
             't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')
CLASSES = 10
KNN_K = 20
KNN_T = 0.07

# name: (config or None, budget, label). Budget 'epochs': the preset's
# iteration count; 'time': the iterations that cost what FastMIM-HOG at 16 px
# costs, from the calibration.
ARMS = {
    'scratch': (None, None, 'no pre-training (untrained encoder)'),
    'hog16': ('fastmim-hog_vit-6x192-p4_fashion-mnist-16px.py', 'epochs',
              'FastMIM-HOG 16 px'),
    'hog32': ('fastmim-hog_vit-6x192-p4_fashion-mnist-32px.py', 'epochs',
              'FastMIM-HOG 32 px, equal epochs'),
    'hog32-time': ('fastmim-hog_vit-6x192-p4_fashion-mnist-32px.py', 'time',
                   'FastMIM-HOG 32 px, equal wall-clock'),
    'pixel16': ('fastmim-pixel_vit-6x192-p4_fashion-mnist-16px.py', 'epochs',
                'FastMIM-pixel 16 px'),
    'pixel32': ('fastmim-pixel_vit-6x192-p4_fashion-mnist-32px.py', 'epochs',
                'FastMIM-pixel 32 px, equal epochs'),
    'mae32-time': ('mae_vit-6x192-p4_fashion-mnist-32px.py', 'time',
                   'MAE 32 px, equal wall-clock'),
}
TIME_REFERENCE = 'hog16'
# The pre-training config whose untrained encoder the scratch arm starts from.
SCRATCH_INIT = ARMS['hog32'][0]

# iters: FastMIM-HOG 16 px pre-training iterations (batch `batch`);
# rounds: calibration rounds; knn_train/knn_test: images (None = all);
# labels: labelled images per class; ft_batch: fine-tuning batch (None: the
# config's 50); ft_iters/ft_val: fine-tuning iterations and the
# interval of the test-accuracy curve, measured on the first `curve_test`
# test images; ft_test: test images for the final accuracy (None = all);
# long: the scratch arm is also fine-tuned `long` times longer (pre-training
# and fine-tuning seed 0), to show how far from converged scratch is.
PRESETS = {
    'smoke':
    dict(
        arms=['scratch', 'hog16', 'hog32-time', 'pixel32', 'mae32-time'],
        pt_seeds=[0],
        ft_seeds=[0],
        iters=3,
        batch=16,
        rounds=1,
        knn_train=200,
        knn_test=100,
        labels=2,
        ft_batch=10,
        ft_iters=4,
        ft_val=2,
        curve_test=50,
        ft_test=100,
        long=2),
    'quick':
    dict(
        arms=['scratch', 'hog16', 'hog32-time', 'mae32-time'],
        pt_seeds=[0],
        ft_seeds=[0],
        iters=400,
        batch=128,
        rounds=3,
        knn_train=20000,
        knn_test=None,
        labels=100,
        ft_batch=None,
        ft_iters=400,
        ft_val=100,
        curve_test=1000,
        ft_test=None,
        long=0),
    'full':
    dict(
        arms=list(ARMS),
        pt_seeds=[0, 1],
        ft_seeds=[0, 1],
        iters=2000,
        batch=128,
        rounds=5,
        knn_train=None,
        knn_test=None,
        labels=100,
        ft_batch=None,
        ft_iters=2400,
        ft_val=300,
        curve_test=1000,
        ft_test=None,
        long=2),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Fashion-MNIST study of FastMIM (see the module '
        'docstring).')
    parser.add_argument('--preset', choices=list(PRESETS), default='quick')
    parser.add_argument('--work-dir', default='work_dirs/study')
    parser.add_argument(
        '--idx-dir',
        help='folder with the Fashion-MNIST IDX files (gzipped or not); '
        f'default: {DEBIAN_DIR}, from the Debian package {DEBIAN_PACKAGE}, '
        'installed with apt-get if missing and running as root')
    parser.add_argument(
        '--data-dir',
        default='data/fashion_mnist',
        help='where the un-gzipped IDX files are written')
    parser.add_argument(
        '--device',
        choices=['cpu', 'cuda'],
        default='cuda' if torch.cuda.is_available() else 'cpu')
    return parser.parse_args(argv)


def fail(message: str):
    print(f'fashion_mnist_study.py: error: {message}', file=sys.stderr)
    sys.exit(1)


def log(message: str):
    print(f'[study] {message}', flush=True)


# ---------------------------------------------------------------- data


def idx_count(path: str) -> int:
    """Number of items in an IDX file, from its header."""
    if not osp.isfile(path):
        return -1
    opener = gzip.open if path.endswith('.gz') else open
    try:
        with opener(path, 'rb') as f:
            header = f.read(8)
    except (OSError, EOFError):
        return -1
    if len(header) < 8 or header[:2] != b'\x00\x00':
        return -1
    return int.from_bytes(header[4:8], 'big')


def find_idx(folder: str) -> dict:
    found = {}
    for name in IDX_FILES:
        for candidate in (name, name + '.gz'):
            if osp.isfile(osp.join(folder, candidate)):
                found[name] = osp.join(folder, candidate)
                break
    return found


def prepare_data(idx_dir, data_dir: str) -> str:
    """Un-gzip the four IDX files into ``data_dir`` and return it.

    Without ``idx_dir``, files already in ``data_dir`` are used; otherwise
    those of the Debian package, installed first if missing and allowed.
    """
    if idx_dir is None:
        if all(idx_count(osp.join(data_dir, n)) > 0 for n in IDX_FILES):
            return data_dir
        idx_dir = DEBIAN_DIR
        if len(find_idx(idx_dir)) < len(IDX_FILES):
            if os.geteuid() != 0 or shutil.which('apt-get') is None:
                fail(f'Fashion-MNIST not found in {DEBIAN_DIR}: install it '
                     f'with `sudo apt-get install {DEBIAN_PACKAGE}`, or pass '
                     '--idx-dir FOLDER with its four IDX files.')
            log(f'installing the Debian package {DEBIAN_PACKAGE}')
            proc = subprocess.run(
                ['apt-get', 'install', '-y', '-q', DEBIAN_PACKAGE],
                capture_output=True,
                text=True)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()
                fail(f'apt-get install {DEBIAN_PACKAGE} failed '
                     f'({tail[-1] if tail else proc.returncode}); pass '
                     '--idx-dir FOLDER with the four IDX files instead.')
    found = find_idx(idx_dir)
    missing = [n for n in IDX_FILES if n not in found]
    if missing:
        fail(f'--idx-dir {idx_dir}: {", ".join(missing)} missing (.gz or '
             'not); the folder needs the four Fashion-MNIST IDX files.')
    for split in ('train', 't10k'):
        images, labels = (
            found[f'{split}-{kind}']
            for kind in ('images-idx3-ubyte', 'labels-idx1-ubyte'))
        if idx_count(images) < 1 or idx_count(images) != idx_count(labels):
            fail(f'{images} and {labels} are not a pair of IDX files with '
                 'as many images as labels.')
    os.makedirs(data_dir, exist_ok=True)
    for name, src in found.items():
        dst = osp.join(data_dir, name)
        opener = gzip.open if src.endswith('.gz') else open
        with opener(src, 'rb') as fin, open(dst + '.tmp', 'wb') as fout:
            shutil.copyfileobj(fin, fout)
        os.replace(dst + '.tmp', dst)
    log(f'data: the IDX files of {idx_dir}, un-gzipped in {data_dir}')
    return data_dir


def labelled_subset(data_dir: str, per_class: int) -> list:
    """The first ``per_class`` training images of each class (file order,
    which Fashion-MNIST already shuffles)."""
    labels = read_label_file(osp.join(data_dir, 'train-labels-idx1-ubyte'))
    chosen = []
    for c in range(CLASSES):
        chosen += torch.nonzero(labels == c)[:per_class, 0].tolist()
    if len(chosen) < per_class * CLASSES:
        fail(f'the training labels hold fewer than {per_class} images of '
             'some class.')
    return sorted(chosen)


# ---------------------------------------------------------------- configs


def load_config(name: str, work_dir: str, data_dir: str, seed: int):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    cfg.work_dir = work_dir
    cfg.experiment_name = osp.relpath(work_dir, ROOT).replace(os.sep, '_') \
        + time.strftime('_%Y%m%d_%H%M%S')
    cfg.randomness = dict(seed=seed, diff_rank_seed=False)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(key) is not None:
            cfg[key].dataset.data_root = data_dir
    return cfg


def set_iters(cfg: Config, iters: int, val_interval=None) -> None:
    """Set the length of an iteration-based run: the configs' linear
    warm-up keeps its share (at least one iteration), cosine decay the
    rest."""
    warmup, cosine = cfg.param_scheduler
    share = warmup.end / cfg.train_cfg.max_iters
    warm = min(max(1, round(share * iters)), iters - 1)
    warmup.end = warm
    cosine.update(begin=warm, end=iters, T_max=iters - warm)
    cfg.train_cfg.max_iters = iters
    if val_interval is not None:
        cfg.train_cfg.val_interval = val_interval
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = max(1, min(50, iters // 10))


def build_model(cfg: Config, device: str):
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.to(device)


class Recorder(Hook):
    """Keeps a run's training time (first to last iteration, data loading
    included, set-up excluded), training loss and validation accuracy.

    With ``resume_file``, the run is saved there after each validation,
    with what the recorder has kept and the unit's ``settings``, so that an
    interrupted run goes on from there (the iterations it resumed at are
    kept too).
    """

    priority = 'LOW'

    def __init__(self, resume_file=None, settings=None):
        self.curve = []
        self.losses = []
        self.resumed_at = []
        self.seconds = None
        self.earlier = 0.  # seconds spent before a resume
        self.resume_file = resume_file
        self.settings = settings

    def elapsed(self) -> float:
        return self.earlier + time.perf_counter() - self.start

    def before_train(self, runner):
        self.start = time.perf_counter()

    def after_train(self, runner):
        self.seconds = self.elapsed()

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        if outputs and 'loss' in outputs:
            self.losses.append(float(outputs['loss']))

    def after_val_epoch(self, runner, metrics=None):
        self.curve.append([runner.iter, float(metrics['accuracy/top1'])])
        if self.resume_file:
            # by_epoch=True records runner.iter as it is; by_epoch=False
            # adds one, being meant for after_train_iter.
            folder, name = osp.split(self.resume_file)
            runner.save_checkpoint(folder, name + '.tmp', by_epoch=True)
            os.replace(self.resume_file + '.tmp', self.resume_file)

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint['meta']['study'] = dict(
            settings=self.settings,
            curve=self.curve,
            losses=self.losses,
            seconds=self.elapsed(),
            resumed_at=self.resumed_at)

    def after_load_checkpoint(self, runner, checkpoint):
        saved = checkpoint['meta']['study']
        self.curve, self.losses = saved['curve'], saved['losses']
        self.earlier = saved['seconds']
        self.resumed_at = saved['resumed_at'] + [checkpoint['meta']['iter']]


def interrupted_at(resume_file: str, settings: dict):
    """The iteration an interrupted fine-tuning with these settings can go
    on from, or None (a run with other settings is discarded)."""
    if not osp.isfile(resume_file):
        return None
    meta = torch.load(
        resume_file, map_location='cpu', weights_only=False)['meta']
    if meta.get('study', {}).get('settings') != settings:
        os.remove(resume_file)
        return None
    return meta['iter']


# ---------------------------------------------------------------- cache


class Cache:
    """One JSON per unit under WORK_DIR/cache, with the settings it was
    computed with; a unit whose settings differ is refused, not mixed in."""

    def __init__(self, work_dir: str):
        self.root = osp.join(work_dir, 'cache')

    def path(self, arm, pt_seed, unit):
        return osp.join(self.root, arm, f'pt{pt_seed}', f'{unit}.json')

    def get(self, arm, pt_seed, unit, settings):
        path = self.path(arm, pt_seed, unit)
        if not osp.isfile(path):
            return None
        with open(path) as f:
            record = json.load(f)
        if record.get('settings') != settings:
            fail(f'{path} was computed with other settings '
                 f'({record.get("settings")}, now {settings}): use another '
                 '--work-dir for another preset, or delete that file.')
        return record

    def put(self, arm, pt_seed, unit, settings, record):
        path = self.path(arm, pt_seed, unit)
        os.makedirs(osp.dirname(path), exist_ok=True)
        record = dict(record, settings=settings)
        write_json(path, record)
        return record


def write_json(path: str, obj) -> None:
    with open(path + '.tmp', 'w') as f:
        json.dump(obj, f, indent=1)
        f.write('\n')
    os.replace(path + '.tmp', path)


# ---------------------------------------------------------------- units


def load_calibration(args, preset: dict):
    path = osp.join(args.work_dir, 'calibration.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        record = json.load(f)
    if record['batch'] != preset['batch']:
        fail(f'{path} was measured at batch {record["batch"]}, the preset '
             f'uses {preset["batch"]}: use another --work-dir.')
    return record


def calibrate(args, preset: dict) -> dict:
    """Seconds per training step (preset batch) of every pre-training config
    the equal-time arms are compared with, timed in interleaved rounds on
    in-memory images; the minimum over rounds, which other load on the
    machine inflates least."""
    names = sorted(
        {ARMS[a][0]
         for a in preset['arms'] if ARMS[a][1] == 'time'}
        | {ARMS[TIME_REFERENCE][0]})
    log(f'calibrating the step time of {len(names)} pre-training configs')
    torch.manual_seed(0)
    methods = {}
    for name in names:
        cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
        model = build_model(cfg, args.device).train()
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        size = cfg.model.backbone.img_size
        data = dict(
            inputs=torch.randint(
                0, 256, (preset['batch'], 1, size, size), dtype=torch.uint8),
            data_samples=None)
        methods[name] = (model, optim, data)
    times = {name: [] for name in names}
    for r in range(preset['rounds'] + 1):
        for name, (model, optim, data) in methods.items():
            if args.device == 'cuda':
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(2):
                model.train_step(dict(data), optim)
            if args.device == 'cuda':
                torch.cuda.synchronize()
            if r:  # the first round warms up
                times[name].append((time.perf_counter() - start) / 2)
    record = dict(
        batch=preset['batch'],
        device=args.device,
        os_load_average=os.getloadavg()[0],
        step_s={
            n: min(t)
            for n, t in times.items()
        },
        step_s_rounds=times)
    write_json(osp.join(args.work_dir, 'calibration.json'), record)
    return record


def pretrain_iters(arm: str, preset: dict, calibration: dict) -> int:
    config, budget, _ = ARMS[arm]
    if budget == 'epochs':
        return preset['iters']
    step = calibration['step_s']
    ratio = step[ARMS[TIME_REFERENCE][0]] / step[config]
    return max(2, round(preset['iters'] * ratio))


def run_pretrain(args, arm, seed, iters, preset) -> dict:
    work_dir = osp.join(args.work_dir, 'runs', arm, f'pt{seed}', 'pretrain')
    config = ARMS[arm][0]
    if config is None:
        # The encoder every pre-training starts from (Xavier linear layers,
        # sin-cos position table), untrained, saved like a pre-training: the
        # arms then differ only in what pre-training learned.
        cfg = load_config(SCRATCH_INIT, work_dir, args.data_dir, seed)
        torch.manual_seed(seed)
        model = build_model(cfg, 'cpu')
        os.makedirs(work_dir, exist_ok=True)
        ckpt = osp.join(work_dir, 'init.pth')
        torch.save(dict(state_dict=model.state_dict()), ckpt)
        return dict(
            checkpoint=osp.relpath(ckpt, args.work_dir),
            iters=0,
            epochs=0.,
            seconds=0.,
            images_per_s=None,
            final_loss=None)
    cfg = load_config(config, work_dir, args.data_dir, seed)
    cfg.train_dataloader.batch_size = preset['batch']
    set_iters(cfg, iters)
    runner = Runner.from_cfg(cfg)
    recorder = Recorder()
    runner.register_hook(recorder)
    runner.train()
    seconds = recorder.seconds
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    images = iters * preset['batch']
    tail = recorder.losses[-max(1, iters // 10):]
    return dict(
        checkpoint=osp.relpath(ckpt, args.work_dir),
        iters=iters,
        epochs=images / len(runner.train_dataloader.dataset),
        seconds=seconds,
        images_per_s=images / seconds,
        final_loss=sum(tail) / len(tail))


def subset(n):
    """The first n images (None: all)."""
    return None if n is None else list(range(n))


def checkpoint_path(args, pretrain: dict) -> str:
    path = pretrain['checkpoint']
    return path if osp.isabs(path) else osp.join(args.work_dir, path)


def encoder_32px(ckpt: str, cfg: Config) -> str:
    """The encoder of a pre-training checkpoint, with the 32 px sin-cos
    position table, written next to it.

    Every pre-training here (FastMIM, MAE) keeps its sin-cos table fixed, so
    the table carries nothing learned; a bicubic resize of the 16 px arms'
    4x4 table to 8x8 would start them from a worse one than the 32 px arms
    (measured on the untrained 16 px encoder, 400 fine-tuning iterations:
    66.5% with the resized table, 70.0% with the 32 px one).
    """
    path = osp.splitext(ckpt)[0] + '_encoder-32px.pth'
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    backbone = cfg.model.backbone
    table = build_2d_sincos_position_embedding(
        backbone.img_size // backbone.patch_size,
        backbone.arch['embed_dims'],
        cls_token=True)
    state = {
        k: v
        for k, v in state['state_dict'].items() if k.startswith('backbone.')
    }
    state['backbone.pos_embed'] = table
    torch.save(dict(state_dict=state), path + '.tmp')
    os.replace(path + '.tmp', path)
    return path


def classifier_config(args, arm, pretrain, work_dir, seed):
    cfg = load_config(FINETUNE_CONFIG, work_dir, args.data_dir, seed)
    ckpt = checkpoint_path(args, pretrain)
    if not osp.isfile(ckpt):
        fail(f'{ckpt} (the pre-trained {arm} encoder) is missing: delete '
             f'{osp.join(args.work_dir, "cache", arm)} to pre-train again.')
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained',
        checkpoint=encoder_32px(ckpt, cfg),
        prefix='backbone.')
    return cfg


@torch.no_grad()
def features(model, cfg, split: str, limit, device) -> tuple:
    dataset = dict(
        cfg.val_dataloader.dataset, split=split, test_mode=split == 'test')
    if limit is not None:
        dataset['indices'] = limit
    loader = Runner.build_dataloader(dict(cfg.val_dataloader, dataset=dataset))
    feats, labels = [], []
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        # bf16 matrix products: 1.5-1.9x faster on this CPU (AVX512-BF16),
        # features within 2% of float32 ones.
        with torch.autocast(device, dtype=torch.bfloat16):
            fmap = model.backbone(data['inputs'].to(device))[-1]
        feats.append(fmap.float().flatten(2).mean(2).cpu())
        labels.append(torch.cat([s.gt_label for s in data['data_samples']]))
    return torch.cat(feats), torch.cat(labels)


def knn_accuracy(train_x, train_y, test_x, test_y) -> float:
    train_x = F.normalize(train_x, dim=1)
    test_x = F.normalize(test_x, dim=1)
    correct = 0
    for start in range(0, len(test_x), 500):
        sim = test_x[start:start + 500] @ train_x.t()
        top, idx = sim.topk(min(KNN_K, len(train_x)), dim=1)
        votes = torch.zeros(len(top), CLASSES)
        votes.scatter_add_(1, train_y[idx], (top / KNN_T).exp())
        correct += (votes.argmax(1) == test_y[start:start + 500]).sum()
    return 100. * float(correct) / len(test_x)


def run_knn(args, arm, seed, pretrain, preset) -> dict:
    work_dir = osp.join(args.work_dir, 'runs', arm, f'pt{seed}', 'knn')
    cfg = classifier_config(args, arm, pretrain, work_dir, seed)
    cfg.model.backbone.out_type = 'featmap'  # patch tokens, final norm
    model = build_model(cfg, args.device).eval()
    start = time.perf_counter()
    train = features(model, cfg, 'train', preset['knn_train'], args.device)
    test = features(model, cfg, 'test', preset['knn_test'], args.device)
    accuracy = knn_accuracy(*train, *test)
    return dict(
        accuracy=accuracy,
        train_images=len(train[0]),
        test_images=len(test[0]),
        seconds=time.perf_counter() - start)


def run_finetune(args, arm, seed, unit, pretrain, settings, labelled):
    work_dir = osp.join(args.work_dir, 'runs', arm, f'pt{seed}', unit)
    cfg = classifier_config(args, arm, pretrain, work_dir, settings['ft_seed'])
    cfg.train_dataloader.dataset.indices = labelled
    if settings['ft_batch']:
        cfg.train_dataloader.batch_size = settings['ft_batch']
    cfg.val_dataloader.dataset.indices = subset(settings['curve_test'])
    if settings['ft_test'] is not None:
        cfg.test_dataloader.dataset.indices = subset(settings['ft_test'])
    set_iters(cfg, settings['ft_iters'], settings['ft_val'])
    resume_file = osp.join(work_dir, 'resume.pth')
    start = interrupted_at(resume_file, settings)
    if start is not None:
        log(f'  going on from iteration {start} of the interrupted run '
            f'({resume_file})')
        cfg.load_from, cfg.resume = resume_file, True
    runner = Runner.from_cfg(cfg)
    recorder = Recorder(resume_file, settings)
    runner.register_hook(recorder)
    runner.train()
    accuracy = float(runner.test()['accuracy/top1'])
    # The checkpoints are not needed once the result is cached.
    for name in os.listdir(work_dir):
        if name.endswith('.pth'):
            os.remove(osp.join(work_dir, name))
    losses = recorder.losses
    return dict(
        accuracy=accuracy,
        curve=recorder.curve,
        # training loss, mean per 20 iterations (an epoch of 1,000 labels)
        train_loss=[
            statistics.mean(losses[i:i + 20])
            for i in range(0, len(losses), 20)
        ],
        seconds=recorder.seconds,
        resumed_at=recorder.resumed_at)


# ---------------------------------------------------------------- results


def mean_std(values: list) -> tuple:
    if not values:
        return None, None
    std = statistics.stdev(values) if len(values) > 1 else None
    return statistics.mean(values), std


def aggregate(args, preset, records, calibration, labelled, seconds):
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
        preset=args.preset,
        settings=preset,
        machine=dict(
            cpus=os.cpu_count(),
            torch_threads=torch.get_num_threads(),
            device=args.device,
            gpu=torch.cuda.get_device_name()
            if args.device == 'cuda' else None,
            torch=torch.__version__),
        study_seconds=seconds,
        # The study's cost over all its sittings: every unit's own time.
        run_seconds=sum(r['pretrain']['seconds'] + r['knn']['seconds'] +
                        sum(f['seconds'] for f in r['finetune'].values())
                        for runs in records.values() for r in runs.values()),
        calibration=calibration,
        evaluation=dict(
            knn=f'k={KNN_K}, cosine, weights exp(sim/{KNN_T}), mean-pooled '
            'patch tokens after the final norm, frozen encoder, 32 px, '
            'bf16 autocast',
            finetune=f'{len(labelled)} labels (first {preset["labels"]} of '
            'each class in file order), final test accuracy, 32 px',
            labelled_indices=labelled),
        arms=arms)


def fmt(mean_std: tuple, n: int) -> str:
    mean, std = mean_std
    if mean is None:
        return '-'
    return f'{mean:.1f}' + (f' ± {std:.1f}' if std is not None else '') + \
        f' (n={n})'


def write_table(results: dict, path: str) -> None:
    labels = len(results['evaluation']['labelled_indices'])
    lines = [
        '| arm | pre-training iterations (epochs) | wall-clock (s) | '
        f'images/s | kNN top-1 | fine-tune top-1 ({labels:,} labels) |',
        '| --- | ---: | ---: | ---: | ---: | ---: |',
    ]
    for arm, r in results['arms'].items():
        secs = mean_std(r['pretrain_seconds'])[0]
        ips = [x for x in r['images_per_s'] if x]
        lines.append(f'| {r["label"]} | ' + (
            f'{r["iters"]} ({r["epochs"]:.2f})' if r['iters'] else '-') +
                     ' | ' + (f'{secs:.0f}' if secs else '-') + ' | ' +
                     (f'{statistics.mean(ips):.0f}' if ips else '-') +
                     f' | {fmt(r["knn_mean_std"], len(r["knn"]))}'
                     f' | {fmt(r["finetune_mean_std"], len(r["finetune"]))} |')
    m = results['machine']
    lines += [
        '',
        f'Preset `{results["preset"]}`, {m["device"]} '
        f'({m["gpu"] or str(m["cpus"]) + " cores"}): '
        f'{results["run_seconds"] / 3600:.2f} h of pre-training, kNN and '
        'fine-tuning, summed over every arm and seed (and over sittings), '
        f'{results["study_seconds"] / 60:.0f} min in this invocation. '
        'Mean ± standard deviation over pre-training seeds (kNN) and over '
        'pre-training x fine-tuning seeds (fine-tune).',
    ]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def write_plot(results: dict, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for i, (arm, r) in enumerate(results['arms'].items()):
        colour = colours[i % len(colours)]
        for seed, run in r['runs'].items():
            x = run['pretrain']['seconds']
            axes[0].scatter(
                x,
                run['knn']['accuracy'],
                color=colour,
                label=r['label'] if seed == '0' else None)
            for unit, ft in run['finetune'].items():
                if unit != 'ft-long':
                    axes[1].scatter(x, ft['accuracy'], color=colour)
        if r['finetune_curve_mean']:
            its, accs = zip(*r['finetune_curve_mean'])
            axes[2].plot(its, accs, marker='.', color=colour)
        if r['long_schedule']:
            its, accs = zip(*r['long_schedule']['curve'])
            axes[2].plot(
                its,
                accs,
                linestyle='--',
                color=colour,
                label=f'{r["label"]}, '
                f'{r["long_schedule"]["iters"]} iterations')
    axes[0].set(
        title='kNN (frozen encoder)',
        xlabel='pre-training wall-clock (s)',
        ylabel='test top-1 (%)')
    labels = len(results['evaluation']['labelled_indices'])
    axes[1].set(
        title=f'fine-tuned on {labels:,} labels',
        xlabel='pre-training wall-clock (s)',
        ylabel='test top-1 (%)')
    axes[2].set(
        title='fine-tuning (mean over seeds)',
        xlabel='fine-tuning iteration',
        ylabel='top-1 (%), first test images')
    for ax in axes:
        ax.grid(alpha=.3)
    fig.legend(loc='lower center', ncol=4, frameon=False)
    fig.tight_layout(rect=(0, .12, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------- main


class Progress:
    """ETA from what is left: pre-training at the seconds per iteration
    measured for that config so far (else the mean over configs), kNN and
    fine-tuning at the mean time of those run so far."""

    def __init__(self):
        self.start = time.perf_counter()
        self.left_pretrain = []  # (config, iterations)
        self.per_iter = {}  # config: seconds per iteration
        self.left = dict(knn=0, finetune=0.)
        self.spent = dict(knn=[], finetune=[])

    def plan(self, kind: str, amount=1) -> None:
        if kind == 'pretrain':
            self.left_pretrain.append(amount)
        else:
            self.left[kind] += amount

    def done(self, kind: str, seconds: float, amount=1) -> None:
        if kind == 'pretrain':
            self.left_pretrain.remove(amount)
            self.per_iter[amount[0]] = seconds / amount[1]
        else:
            self.left[kind] -= amount
            self.spent[kind].append(seconds / amount)

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        text = f'elapsed {elapsed / 60:.1f} min'
        if self.left_pretrain and not self.per_iter:
            return text + ', ETA after the first pre-training'
        eta = 0.
        if self.per_iter:
            mean = statistics.mean(self.per_iter.values())
            eta = sum(iters * self.per_iter.get(config, mean)
                      for config, iters in self.left_pretrain)
        for kind in ('knn', 'finetune'):
            if self.left[kind] and not self.spent[kind]:
                return text + f', ETA after the first {kind} run'
            if self.left[kind]:
                eta += self.left[kind] * statistics.mean(self.spent[kind])
        return text + f', ETA {eta / 60:.1f} min'


def unit_settings(arm, seed, preset, calibration):
    """What each unit of an arm and pre-training seed is computed with;
    None for an equal-time arm before the calibration exists."""
    if ARMS[arm][1] == 'time' and calibration is None:
        return None
    iters = 0 if ARMS[arm][0] is None else \
        pretrain_iters(arm, preset, calibration)
    pt = dict(
        config=ARMS[arm][0], iters=iters, batch=preset['batch'], seed=seed)
    if ARMS[arm][0] is None:
        pt['init'] = SCRATCH_INIT
    evaluation = dict(pt, position_table='sin-cos 32 px')
    settings = dict(
        pretrain=pt,
        knn=dict(
            evaluation,
            knn_train=preset['knn_train'],
            knn_test=preset['knn_test']))
    for f in preset['ft_seeds']:
        settings[f'ft{f}'] = dict(
            evaluation,
            ft_seed=f,
            labels=preset['labels'],
            ft_batch=preset['ft_batch'],
            ft_iters=preset['ft_iters'],
            ft_val=preset['ft_val'],
            curve_test=preset['curve_test'],
            ft_test=preset['ft_test'])
    if arm == 'scratch' and seed == preset['pt_seeds'][0] and \
            preset['long']:
        first = settings[f'ft{preset["ft_seeds"][0]}']
        settings['ft-long'] = dict(
            first,
            ft_iters=first['ft_iters'] * preset['long'],
            ft_val=first['ft_val'] * preset['long'])
    return settings


def cached_units(args, cache, arm, seed, settings) -> dict:
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
    labelled = labelled_subset(args.data_dir, preset['labels'])
    # Calibrated only when the first equal-time arm needs it, so that it
    # sees the load the machine has then.
    calibration = load_calibration(args, preset)
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

    run_preset = dict(
        preset,
        knn_train=subset(preset['knn_train']),
        knn_test=subset(preset['knn_test']))
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
            pretrain = cache.put(arm, seed, 'pretrain', settings['pretrain'],
                                 run_pretrain(args, arm, seed, iters, preset))
            if config is not None:
                progress.done('pretrain', pretrain['seconds'], (config, iters))
        knn = cached['knn']
        if knn is None:
            log(f'  computing kNN for {arm} seed {seed}: {progress.line()}')
            knn = cache.put(arm, seed, 'knn', settings['knn'],
                            run_knn(args, arm, seed, pretrain, run_preset))
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

    results = aggregate(args, preset, records, calibration, labelled,
                        time.perf_counter() - progress.start)
    write_json(osp.join(args.work_dir, 'results.json'), results)
    write_table(results, osp.join(args.work_dir, 'results.md'))
    write_plot(results, osp.join(args.work_dir, 'results.png'))
    with open(osp.join(args.work_dir, 'results.md')) as f:
        print(f.read(), end='')
    log(f'results in {osp.join(args.work_dir, "results.json")}, '
        f'results.md and results.png')


if __name__ == '__main__':
    main()
