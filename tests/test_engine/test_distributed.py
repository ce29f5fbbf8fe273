"""tools/dist_train.sh and tools/slurm_train.sh on CPU: gloo, two
processes on one node or on two, a stop signal, a requeue."""
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

from fastmim_mm.engine import read_checkpoint
from ..conftest import ROOT, free_port, run_train_py, runner_config
from .run_logs import scalar_runs


def _config(tmp_path, image_folder, name, batch_size):
    cfg = runner_config(
        tmp_path / name,
        image_folder,
        batch_size=batch_size,
        max_epochs=2,
        input_size=64,
        randomness=dict(seed=0, diff_rank_seed=False),
        custom_hooks=[])
    # A process draws the masks of its own samples, so per-rank masks can
    # never equal one process's draw for the whole batch. Masking every
    # block makes the masks identical in both set-ups, and a fixed resize
    # does the same for the crop, while sharding, DDP's gradient averaging
    # and the optimiser still decide the losses.
    cfg.model.mask_generator.mask_ratio = 0.95  # keeps int(16 * .05) = 0
    cfg.train_dataloader.dataset.dataset.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(64, 64)),
        dict(type='PackInputs'),
    ]
    path = str(tmp_path / f'{name}.py')
    cfg.dump(path)
    return path


def _env(**kwargs):
    return dict(
        os.environ,
        OMP_NUM_THREADS='1',
        PATH=f'{os.path.dirname(sys.executable)}:{os.environ["PATH"]}',
        **kwargs)


def _dist_train(config, *args, processes=2, wait=True, **env):
    """tools/dist_train.sh CONFIG PROCESSES in CPU processes."""
    command = [
        'bash',
        str(ROOT / 'tools' / 'dist_train.sh'), config,
        str(processes), *args
    ]
    env = _env(**{'PORT': str(free_port()), **env})
    if not wait:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True)
    return subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300)


def test_two_cpu_processes_match_one_and_two_nodes(image_folder, tmp_path):
    two = _config(tmp_path, image_folder, 'two', batch_size=4)
    result = _dist_train(two)
    assert result.returncode == 0, result.stderr[-3000:]
    ckpts = sorted(
        f for f in os.listdir(tmp_path / 'two') if f.endswith('.pth'))
    assert ckpts == ['epoch_1.pth', 'epoch_2.pth']  # saved once, by rank 0
    two_sd = read_checkpoint(tmp_path / 'two' / 'epoch_2.pth')['state_dict']

    # Two "nodes" of one process each, as documented: NNODES, NODE_RANK,
    # MASTER_ADDR and PORT on each; torchrun's rendezvous on localhost.
    nodes = _config(tmp_path, image_folder, 'nodes', batch_size=4)
    port = str(free_port())
    launches = [
        _dist_train(
            nodes,
            processes=1,
            wait=False,
            NNODES='2',
            NODE_RANK=str(rank),
            MASTER_ADDR='127.0.0.1',
            PORT=port) for rank in (0, 1)
    ]
    for launch in launches:
        _, err = launch.communicate(timeout=300)
        assert launch.returncode == 0, err[-3000:]
    nodes_sd = read_checkpoint(tmp_path / 'nodes' /
                               'epoch_2.pth')['state_dict']
    for key, value in two_sd.items():
        torch.testing.assert_close(nodes_sd[key], value, atol=1e-6, rtol=0)

    one = _config(tmp_path, image_folder, 'one', batch_size=8)
    result = run_train_py(one, OMP_NUM_THREADS='1')
    assert result.returncode == 0, result.stderr[-3000:]

    # Same data, same masks, DDP's averaged gradients: the two runs must
    # end with the same weights and so give the same loss on any batch.
    one_sd = read_checkpoint(tmp_path / 'one' / 'epoch_2.pth')['state_dict']
    initial = read_checkpoint(tmp_path / 'two' / 'epoch_1.pth')['state_dict']
    assert not torch.equal(two_sd['neck.pred.weight'],
                           initial['neck.pred.weight'])
    for key, value in one_sd.items():
        torch.testing.assert_close(two_sd[key], value, atol=2e-5, rtol=1e-4)

    cfg = Config.fromfile(one)
    model = MODELS.build(cfg.model)
    batch = torch.randn(8, 3, 64, 64)
    losses = []
    for state in (one_sd, two_sd):
        model.load_state_dict(state)
        torch.manual_seed(0)
        losses.append(model.loss(batch, None)['loss'].item())
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)


def _threads():
    return set(os.listdir('/proc/self/task'))


def test_session_end_joins_gloo_threads(tmp_path):
    """The gloo group's worker threads must be gone when the session ends,
    even while a DDP model sits in a reference cycle as it does inside a
    Runner: threads left to interpreter exit abort the process now and
    then."""
    from torch.nn.parallel import DistributedDataParallel

    from fastmim_mm.engine.launch import distributed_session

    before = _threads()
    torch.distributed.init_process_group(
        'gloo',
        init_method=f'file://{tmp_path / "store"}',
        rank=0,
        world_size=1)
    with distributed_session():
        runner = type('Runner', (), {})()
        runner.model = DistributedDataParallel(torch.nn.Linear(4, 4))
        runner.itself = runner  # the cycle that delays freeing the model
        torch.distributed.broadcast(torch.ones(3), src=0)
        gloo = _threads() - before
        assert gloo
        del runner
    assert not torch.distributed.is_initialized()
    assert not gloo & _threads()


def test_nan_in_one_process_stops_all_before_saving(image_folder, tmp_path):
    """A NaN loss in rank 1 only: the averaged gradients carry it into rank
    0's weights, so rank 0 must not save them although its loss is finite,
    and neither process may wait for the other."""
    cfg = runner_config(
        tmp_path,
        image_folder,
        batch_size=4,
        max_epochs=2,
        input_size=64,
        custom_hooks=[dict(type='PoisonHook', at_iter=1, rank=1)])
    cfg.custom_imports.imports.append('tests.test_engine.fault_hooks')
    path = str(tmp_path / 'nan.py')
    cfg.dump(path)
    result = _dist_train(path)  # 16 images, 2 x 4 a step: 2 steps an epoch
    assert result.returncode == 1
    # Each process reports it; the console shows the first report, once,
    # without torchrun's report.
    errors = [
        line for line in result.stderr.splitlines()
        if line.startswith('train.py: error: ')
    ]
    assert len(errors) == 1, result.stderr
    assert 'non-finite loss at iteration 2 (epoch 1) in the process of ' \
        'rank 1 (rank ' in errors[0]
    assert 'no checkpoint has been saved yet' in errors[0]
    assert 'ChildFailedError' not in result.stderr
    assert 'Traceback' not in result.stderr
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.pth')]


SRUN = f'''#!{sys.executable}
"""Stands in for Slurm's srun: runs --ntasks tasks of the command here, each
with the variables Slurm sets and a process group of its own, passes
SIGTERM and SIGUSR1 on to them, and exits as srun does: with the highest
task status, 128 + the signal for a killed task."""
import os, signal, subprocess, sys
args, ntasks = sys.argv[1:], 1
with open(os.environ['SRUN_CALLS'], 'a') as f:
    f.write(' '.join(args) + '\\n')
while args[0].startswith('-'):
    option = args.pop(0)
    if option.startswith('--ntasks='):
        ntasks = int(option.split('=')[1])
tasks = [
    subprocess.Popen(args, start_new_session=True, env=dict(
        os.environ, SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank),
        SLURM_NTASKS=str(ntasks), SLURM_NODELIST='localhost',
        SLURM_NNODES='1', SLURM_NODEID='0'))
    for rank in range(ntasks)]
for sig in (signal.SIGTERM, signal.SIGUSR1):
    signal.signal(sig, lambda s, f: [t.send_signal(s) for t in tasks])
codes = [task.wait() for task in tasks]
sys.exit(max(128 - c if c < 0 else c for c in codes))
'''

SCONTROL = f'''#!{sys.executable}
"""Stands in for Slurm's scontrol: hostnames of a node list, and a record
of requeue requests."""
import os, sys
if sys.argv[1:3] == ['show', 'hostname']:
    print(sys.argv[3].split(',')[0])
elif sys.argv[1] == 'requeue':
    with open(os.environ['SCONTROL_CALLS'], 'a') as f:
        f.write(' '.join(sys.argv[1:]) + '\\n')
else:
    sys.exit(1)
'''


def _slurm_train(tmp_path, config, work_dir, *args, **env):
    """tools/slurm_train.sh in a batch job of two tasks, with stand-ins for
    srun and scontrol on PATH."""
    bin_dir = tmp_path / 'slurm_bin'
    bin_dir.mkdir(exist_ok=True)
    for name, script in (('srun', SRUN), ('scontrol', SCONTROL)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    env = _env(
        GPUS='2',
        GPUS_PER_NODE='2',
        SLURM_JOB_ID='4242',
        MASTER_PORT=str(free_port()),
        SRUN_CALLS=str(tmp_path / 'srun_calls'),
        SCONTROL_CALLS=str(tmp_path / 'scontrol_calls'),
        **env)
    env['PATH'] = f'{bin_dir}:{env["PATH"]}'
    return subprocess.run([
        'bash',
        str(ROOT / 'tools' / 'slurm_train.sh'), 'cpu', 'job', config,
        str(work_dir), *args
    ],
                          cwd=ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)


def test_stop_signal_requeue_and_resume_inside_an_epoch(
        image_folder, tmp_path):
    """Two processes, each drawing its own masks and crops (diff_rank_seed)
    with a persistent loader worker. Under tools/slurm_train.sh, a SIGTERM
    to rank 1's processes (its loader worker too, as Slurm sends it at a
    time limit) during iteration 3, the first of epoch 2: both processes
    save that iteration and stop with status 75, the job is requeued, and
    its next start resumes inside epoch 2 by itself. The weights and losses
    must be those of an uninterrupted run."""

    def config(name, *hooks):
        cfg = runner_config(
            tmp_path / name,
            image_folder,
            batch_size=4,
            max_epochs=3,
            randomness=dict(seed=3, diff_rank_seed=True, deterministic=True),
            log_processor=dict(window_size=1),
            custom_hooks=list(hooks))
        cfg.train_dataloader.num_workers = 1
        cfg.train_dataloader.persistent_workers = True
        cfg.custom_imports.imports.append('tests.test_engine.fault_hooks')
        path = str(tmp_path / f'{name}.py')
        cfg.dump(path)
        return path

    result = _dist_train(config('full'))
    assert result.returncode == 0, result.stderr[-3000:]
    full = scalar_runs(tmp_path / 'full')[0]
    assert sorted(full) == list(range(1, 7))  # 2 iterations an epoch

    cut = config(
        'cut',
        dict(
            type='SignalHook', at_iter=2, signal='SIGTERM', rank=1,
            group=True))
    work = tmp_path / 'cut'
    result = _slurm_train(tmp_path, cut, work)
    assert result.returncode == 75, result.stderr[-3000:]
    assert '--ntasks=2' in (tmp_path / 'srun_calls').read_text()
    assert (tmp_path / 'scontrol_calls').read_text() == 'requeue 4242\n'
    assert 'SIGTERM received: stopped after iteration 3 (epoch 2) with ' \
        f'checkpoint {work}/iter_3.pth; exit status 75' in result.stdout
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_3.pth')
    assert not (work / 'epoch_2.pth').exists()
    meta = read_checkpoint(work / 'iter_3.pth')['meta']
    assert meta['epoch_progress'] == dict(samples=4, world_size=2)
    states = meta['random_state']
    assert len(states) == 2
    assert not torch.equal(states[0]['torch'], states[1]['torch'])

    # The requeued job's start: the same command, no --resume given.
    result = _slurm_train(tmp_path, cut, work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'resuming from {work}/iter_3.pth' in result.stdout
    assert (tmp_path / 'scontrol_calls').read_text() == 'requeue 4242\n'
    runs = scalar_runs(work)
    assert sorted(runs[0]) == [1, 2, 3]
    assert sorted(runs[1]) == [4, 5, 6]  # epoch 2's second iteration on
    for run in runs:
        for it, loss in run.items():
            assert loss == pytest.approx(full[it], abs=1e-6, rel=0), it
    full_sd = read_checkpoint(tmp_path / 'full' / 'epoch_3.pth')['state_dict']
    resumed = read_checkpoint(work / 'epoch_3.pth')['state_dict']
    for key, value in full_sd.items():
        torch.testing.assert_close(resumed[key], value, atol=1e-6, rtol=0)

    # One process cannot continue the streams of two: it says so, and
    # continues epoch 2 after the 8 samples both had trained on.
    result = run_train_py(cut, '--resume', work / 'iter_3.pth', '--work-dir',
                          tmp_path / 'one')
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'random streams not restored: the checkpoint holds those of 2 ' \
        'process(es), this run has 1' in result.stdout + result.stderr
    assert sorted(scalar_runs(tmp_path / 'one')[0]) == list(range(4, 10))
