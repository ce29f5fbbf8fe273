"""Peak resident memory per process of an FSDP pre-training run against the
same run under DDP, on CPU processes (gloo; GPUs are hidden from them).

The FSDP config (by default FastMIM ViT-L/16,
``configs/fastmim/fastmim_vit-large-p16_8xb512-amp-fsdp-coslr-400e_in1k-
128px.py``) trains through ``tools/train.py`` in ``--processes`` processes
for ``--iters`` iterations on generated ImageNet-layout JPEGs, once as it
is (``FastMIMFlexibleRunner``, ``FastMIMFSDPStrategy``) and once with
``runner_type=FastMIMRunner`` (DDP), with the same seed. Without a GPU the
configs' AMP optimiser wrapper trains in fp32, as ``tools/train.py`` does
on a CPU. No checkpoints or reconstruction panels are saved (and so no
stop-signal checkpoints either). In a FastMIM-P config (Swin-L) the
``ProgressiveResolutionHook`` phases set the batch per process, over
``--batch-size``: the ``--processes`` x ``--batch-size`` x ``--iters``
images generated then train in fewer iterations.

Each process reports its resident memory once torch and the toolkit are
imported (``start``) and its peak resident memory (``VmHWM``) at the end;
``model state`` is the fp32 weights, gradients and AdamW's two states (16
bytes per parameter), all on every process under DDP and divided among
the processes under FSDP. The losses of both runs are compared as a check.

Example::

    python tools/analysis/fsdp_memory.py --processes 2 --iters 3 \\
        --json work_dirs/fsdp_memory.json
    # FSDP with activation checkpointing (the DDP run has no strategy):
    python tools/analysis/fsdp_memory.py \\
        --cfg-options strategy.activation_checkpointing=True
"""
import argparse
import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(
    REPO, 'configs', 'fastmim',
    'fastmim_vit-large-p16_8xb512-amp-fsdp-coslr-400e_in1k-128px.py')
MODES = ('DDP', 'FSDP')
STATE_BYTES = 16  # fp32 weights, gradients, AdamW's exp_avg, exp_avg_sq
GB = 1e9


def parse_args():
    parser = argparse.ArgumentParser(
        description='Peak resident memory per process of FSDP against DDP '
        '(CPU processes, gloo)')
    parser.add_argument(
        '--config', default=DEFAULT_CONFIG, help='the FSDP config')
    parser.add_argument(
        '--processes', type=int, default=2, help='processes per run')
    parser.add_argument(
        '--batch-size', type=int, default=2, help='images per process')
    parser.add_argument(
        '--iters', type=int, default=3, help='training iterations per run')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='key=value settings given to both runs, e.g. '
        'strategy.activation_checkpointing=True')
    parser.add_argument(
        '--work-dir',
        help='folder for the images and both runs (kept); by default a '
        'temporary folder, removed at the end')
    parser.add_argument('--json', help='also write the results to this file')
    args = parser.parse_args()
    for name in ('processes', 'batch_size', 'iters'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1.')
    if not osp.isfile(args.config):
        parser.error(f'config file {args.config} does not exist.')
    return args


def memory_kib() -> dict:
    """This process's resident memory now and its peak (VmHWM; not
    getrusage's ru_maxrss, which keeps the high-water mark of the process
    this one was forked from), in KiB."""
    with open('/proc/self/status') as f:
        fields = dict(line.split(':', 1) for line in f if ':' in line)
    return {
        key: int(fields[name].split()[0])
        for key, name in (('rss', 'VmRSS'), ('peak', 'VmHWM'))
    }


def worker(out_dir: str, train_argv: list) -> None:
    """One process of a run (started by torchrun): tools/train.py's main,
    then its memory to ``{out_dir}/rank{RANK}.json``."""
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import train  # noqa: E402  (imports torch and the toolkit)
    start = memory_kib()['rss']
    begin = time.perf_counter()
    train.main(train_argv)
    result = dict(
        start_kib=start,
        peak_kib=memory_kib()['peak'],
        seconds=time.perf_counter() - begin)
    with open(osp.join(out_dir, f'rank{os.environ["RANK"]}.json'), 'w') as f:
        json.dump(result, f)


def count_parameters(config: str) -> int:
    """The model's parameters, built on the meta device (no memory), or
    on the CPU for models whose construction reads tensor values (Swin)."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import fastmim_mm  # noqa: F401
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(config).model
    try:
        with torch.device('meta'):
            model = MODELS.build(cfg)
    except RuntimeError:
        model = MODELS.build(cfg)
    return sum(p.numel() for p in model.parameters())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def train_losses(work_dir: str) -> dict:
    """{iteration: loss} from the run's scalars.json."""
    losses = {}
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'loss' in record:
                    losses[record['step']] = record['loss']
    return losses


def run(mode: str, args, data_root: str, folder: str) -> dict:
    work_dir = osp.join(folder, mode.lower())
    out_dir = osp.join(work_dir, 'memory')
    os.makedirs(out_dir, exist_ok=True)
    options = [
        f'train_dataloader.dataset.dataset.data_root={data_root}',
        f'train_dataloader.batch_size={args.batch_size}',
        'train_dataloader.num_workers=0', 'train_cfg.max_epochs=1',
        'default_hooks.checkpoint=None', 'default_hooks.preemption=None',
        'default_hooks.reconstruction=None', 'default_hooks.logger.interval=1',
        *args.cfg_options
    ]
    if mode == 'DDP':
        options.append('runner_type=FastMIMRunner')
    command = [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
        str(args.processes), '--master_port',
        str(free_port()),
        osp.abspath(__file__), '--worker', out_dir, args.config, '--launcher',
        'pytorch', '--work-dir', work_dir, '--cfg-options', *options
    ]
    # CPU processes also on a machine with GPUs: resident memory is all.
    env = dict(
        os.environ,
        CUDA_VISIBLE_DEVICES='',
        PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    print(
        f'{mode}: {args.processes} processes, {args.iters} iterations ...',
        flush=True)
    begin = time.perf_counter()
    result = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).splitlines()
        errors = [line for line in output if 'error: ' in line]
        sys.exit(f'fsdp_memory.py: error: the {mode} run failed (exit status '
                 f'{result.returncode}): ' +
                 (errors[0] if errors else '\n' + '\n'.join(output[-30:])))
    processes = []
    for rank in range(args.processes):
        with open(osp.join(out_dir, f'rank{rank}.json')) as f:
            processes.append(json.load(f))
    return dict(
        processes=processes,
        losses=train_losses(work_dir),
        seconds=time.perf_counter() - begin)


def render_table(results: dict, parameters: int, processes: int) -> str:
    state = parameters * STATE_BYTES / GB
    lines = [
        f'{parameters / 1e6:.1f} M parameters; model state (fp32 weights, '
        f'grads, AdamW 2 states: {STATE_BYTES} B/parameter) {state:.2f} GB '
        f'in all', '',
        f'{"run":<6}{"process":>8}{"start GB":>10}{"peak GB":>9}'
        f'{"peak - start":>14}{"model state":>13}'
    ]
    for mode, result in results.items():
        share = state / (processes if mode == 'FSDP' else 1)
        for rank, proc in enumerate(result['processes']):
            start, peak = (
                proc[key] * 1024 / GB for key in ('start_kib', 'peak_kib'))
            lines.append(f'{mode:<6}{rank:>8}{start:>10.2f}{peak:>9.2f}'
                         f'{peak - start:>14.2f}{share:>13.2f}')
    ddp, fsdp = (
        max(p['peak_kib'] - p['start_kib'] for p in results[m]['processes'])
        for m in MODES)
    lines.append('')
    lines.append(f'FSDP / DDP, peak - start: {fsdp / ddp:.2f}')
    common = sorted(
        set(results['DDP']['losses'])
        & set(results['FSDP']['losses']))
    if common:
        diff = max(
            abs(results['DDP']['losses'][i] - results['FSDP']['losses'][i])
            for i in common)
        lines.append(f'losses of iterations {common[0]}-{common[-1]}: '
                     f'largest |FSDP - DDP| {diff:.2e}')
    return '\n'.join(lines)


def main():
    if sys.argv[1:2] == ['--worker']:
        worker(sys.argv[2], sys.argv[3:])
        return
    args = parse_args()
    sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
    from synthetic_imagenet import make_imagenet_folder

    parameters = count_parameters(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.work_dir or tmp
        images = args.processes * args.batch_size * args.iters
        data_root = make_imagenet_folder(
            osp.join(folder, 'imagenet'),
            num_classes=1,
            images_per_class=images)
        results = {mode: run(mode, args, data_root, folder) for mode in MODES}
    print(render_table(results, parameters, args.processes))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(
                dict(
                    config=osp.relpath(args.config, REPO),
                    parameters=parameters,
                    processes=args.processes,
                    batch_size=args.batch_size,
                    iters=args.iters,
                    cfg_options=args.cfg_options,
                    runs=results),
                f,
                indent=2)


if __name__ == '__main__':
    main()
