"""The study's units (an arm's pre-training, its kNN, one fine-tuning per
seed), the JSON cache they are kept in, the step-time calibration of the
equal-time arms, and the progress of a sitting."""
import json
import os
import os.path as osp
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmpretrain.models.utils import build_2d_sincos_position_embedding

from fastmim_mm.engine import CheckpointFileError, read_checkpoint
from .arms import (ARMS, CONFIG_DIR, FINETUNE_CONFIG, SCRATCH_INIT,
                   TIME_REFERENCE, online_interval)
from .console import fail, log
from .data import subset
from .evaluation import add_online_knn, features, knn_top1
from .runs import (Recorder, build_model, build_runner, interrupted_at,
                   load_config, set_iters)


def write_json(path: str, obj) -> None:
    with open(path + '.tmp', 'w') as f:
        json.dump(obj, f, indent=1)
        f.write('\n')
    os.replace(path + '.tmp', path)


class Cache:
    """One JSON per unit under WORK_DIR/cache, with the settings it was
    computed with; a unit whose settings differ is refused, not mixed in.

    Args:
        work_dir (str): The study's work dir.
    """

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


def load_calibration(work_dir: str, preset: dict):
    """The calibration kept in ``work_dir``, or None."""
    path = osp.join(work_dir, 'calibration.json')
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


def run_pretrain(args, arm, seed, iters, preset, online=None) -> dict:
    """Pre-train ``arm`` (the scratch arm: save its untrained encoder).

    With ``online`` (``arms.ONLINE_KNN``'s entry), the kNN is evaluated
    during pre-training and its curve kept in the record, against the
    training time, i.e. without the time of the evaluations, which is kept
    apart; ``seconds`` and ``images_per_s`` are training only either way.
    The evaluation leaves the training's random streams as they were, so
    the weights are those of a run without it.
    """
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
    if online:
        interval = online_interval(iters, online['points'])
        add_online_knn(
            cfg, load_config(FINETUNE_CONFIG, work_dir, args.data_dir, seed),
            online['memory'], online['queries'], interval)
    recorder = Recorder(metric='knn/top1')
    runner = build_runner(cfg, recorder)
    runner.train()
    seconds = recorder.seconds - recorder.val_seconds
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    images = iters * preset['batch']
    tail = recorder.losses[-max(1, iters // 10):]
    record = dict(
        checkpoint=osp.relpath(ckpt, args.work_dir),
        iters=iters,
        epochs=images / len(runner.train_dataloader.dataset),
        seconds=seconds,
        images_per_s=images / seconds,
        final_loss=sum(tail) / len(tail))
    if online:
        record['online_knn'] = dict(
            online,
            interval=interval,
            seconds=recorder.val_seconds,
            # [iteration, training seconds, knn/top1 (%)], as logged
            curve=[[it, t, top1]
                   for (it,
                        top1), t in zip(recorder.curve, recorder.train_seconds)
                   ])
    return record


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
    state = read_checkpoint(ckpt)
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
    """The fine-tuning config, its encoder initialised from ``pretrain``'s
    checkpoint with the 32 px position table."""
    cfg = load_config(FINETUNE_CONFIG, work_dir, args.data_dir, seed)
    ckpt = checkpoint_path(args, pretrain)
    again = f'delete {osp.join(args.work_dir, "cache", arm)} to pre-train ' \
        'again.'
    if not osp.isfile(ckpt):
        fail(f'{ckpt} (the pre-trained {arm} encoder) is missing: {again}')
    try:
        encoder = encoder_32px(ckpt, cfg)
    except CheckpointFileError as e:
        fail(f'{e} To {again}')
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=encoder, prefix='backbone.')
    return cfg


def frozen_classifier(cfg: Config, device: str):
    """The classifier of ``cfg``, its encoder loaded from the config's
    ``Pretrained`` checkpoint, every key of the encoder and nothing else
    (a strict, weights-only load), in eval mode."""
    encoder = cfg.model.backbone.pop('init_cfg')['checkpoint']
    model = build_model(cfg, 'cpu')
    state = read_checkpoint(encoder)['state_dict']
    state = {k.split('.', 1)[1]: v for k, v in state.items()}
    model.backbone.load_state_dict(state, strict=True)
    return model.to(device).eval()


def run_knn(args, arm, seed, pretrain, preset) -> dict:
    work_dir = osp.join(args.work_dir, 'runs', arm, f'pt{seed}', 'knn')
    cfg = classifier_config(args, arm, pretrain, work_dir, seed)
    cfg.model.backbone.out_type = 'featmap'  # patch tokens, final norm
    model = frozen_classifier(cfg, args.device)
    start = time.perf_counter()
    train = features(model, cfg, 'train', preset['knn_train'], args.device)
    test = features(model, cfg, 'test', preset['knn_test'], args.device)
    return dict(
        accuracy=knn_top1(train, test),
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
    recorder = Recorder(resume_file, settings)
    runner = build_runner(cfg, recorder)
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
