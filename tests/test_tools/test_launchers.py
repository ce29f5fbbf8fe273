"""tools/dist_train.sh, tools/dist_test.sh and tools/slurm_train.sh find
the project's python, or say in one line that there is no torch; they print
their usage when arguments are missing; their processes' errors reach the
console once, with the failed process's exit status (tools/
launch_workers.py)."""
import os
import shutil
import signal
import subprocess
import sys

import pytest

from ..conftest import ROOT, free_port

LAUNCHERS = {
    'dist_train.sh': ['CONFIG', '2'],
    'dist_test.sh': ['CONFIG', 'CKPT', '2'],
    'slurm_train.sh': ['PARTITION', 'JOB', 'CONFIG', 'WORK_DIR'],
}


def _env(**kwargs):
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
    return dict(env, **kwargs)


@pytest.mark.parametrize('script', sorted(LAUNCHERS))
def test_python_without_torch_is_one_line(script, tmp_path):
    """A checkout without .venv and a `python` on PATH that has no torch."""
    checkout = tmp_path / 'checkout'
    (checkout / 'tools').mkdir(parents=True)
    for name in (script, 'python_env.sh'):
        shutil.copy(ROOT / 'tools' / name, checkout / 'tools' / name)
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    # This interpreter without its site-packages: no torch.
    (bin_dir /
     'python').write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    (bin_dir / 'python').chmod(0o755)
    result = subprocess.run(
        ['bash', str(checkout / 'tools' / script), *LAUNCHERS[script]],
        env=_env(PATH=f'{bin_dir}:/usr/bin:/bin'),
        capture_output=True,
        text=True,
        timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"{script}: error: 'python' cannot import torch (no "
        f"{checkout}/.venv). Run 'make install' in {checkout} to create "
        f".venv (then used automatically), activate an environment with "
        f"torch, or set PYTHON=/path/to/python.")
    assert result.stdout == ''


def test_project_venv_is_preferred(tmp_path):
    """With .venv present the launchers use it, whatever PATH says."""
    venv_python = ROOT / '.venv' / 'bin' / 'python'
    if not venv_python.exists():
        pytest.skip('no .venv in this checkout')
    probe = tmp_path / 'probe.sh'
    probe.write_text(f'source {ROOT}/tools/python_env.sh\necho "$PYTHON"\n')
    result = subprocess.run(['bash', str(probe)],
                            env=_env(PATH='/usr/bin:/bin'),
                            capture_output=True,
                            text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(venv_python)


@pytest.mark.parametrize('script', sorted(LAUNCHERS))
def test_missing_arguments_print_the_usage(script):
    result = subprocess.run(['bash', str(ROOT / 'tools' / script)],
                            capture_output=True,
                            text=True,
                            timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith(f'Usage: tools/{script} ') or \
        result.stderr.startswith('Usage: [GPUS=16 ')
    assert 'unbound variable' not in result.stderr
    assert result.stdout == ''


def test_a_process_count_that_is_no_number_is_named():
    result = subprocess.run(
        ['bash',
         str(ROOT / 'tools' / 'dist_train.sh'), 'cfg.py', 'two'],
        capture_output=True,
        text=True,
        timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "dist_train.sh: error: NUM_PROCESSES must be a positive number, "
        "got 'two'.")


WORKER = '''import os, signal, sys, time
rank = int(os.environ['RANK'])
behaviour = sys.argv[1]
if behaviour == 'errors':  # the same warning, then each its own error
    time.sleep(rank / 2)
    print('UserWarning: the same in every process', file=sys.stderr)
    print(f'worker.py: error: seen first by rank {rank}', file=sys.stderr)
    time.sleep(1 - rank)
    sys.exit(1)
if behaviour == 'silent':  # rank 1 fails without a word
    if rank == 1:
        sys.exit(3)
    time.sleep(60)
if behaviour == 'stop':  # ends with 75 on SIGTERM, as PreemptionHook does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(75))
    print('ready', flush=True)
    time.sleep(60)
'''


def _launch(tmp_path, behaviour, wait=True):
    worker = tmp_path / 'worker.py'
    worker.write_text(WORKER)
    command = [
        sys.executable,
        str(ROOT / 'tools' / 'launch_workers.py'), 'launch.sh', 'torchrun',
        '--nproc_per_node=2', f'--master_port={free_port()}',
        str(worker), behaviour
    ]
    env = _env(TMPDIR=str(tmp_path))
    if not wait:
        return subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True)
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120)


def _logs(tmp_path):
    return sorted(tmp_path.glob('launch.sh-*.log'))


def test_each_line_once_and_the_first_error(tmp_path):
    result = _launch(tmp_path, 'errors')
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        'UserWarning: the same in every process',
        'worker.py: error: seen first by rank 0'
    ]
    # torchrun's report and the other process's error: in the log file.
    log = _logs(tmp_path)[0].read_text()
    assert 'worker.py: error: seen first by rank 1' in log
    assert 'ChildFailedError' not in result.stderr and 'FAILED' in log


def test_a_silent_failure_is_named_with_its_status(tmp_path):
    result = _launch(tmp_path, 'silent')
    assert result.returncode == 3
    log = _logs(tmp_path)[0]
    assert result.stderr.splitlines() == [
        f"launch.sh: error: the process of rank 1 ended with exit status 3; "
        f"torchrun's report is in {log}"
    ]


def test_stop_signal_reaches_the_processes(tmp_path):
    launch = _launch(tmp_path, 'stop', wait=False)
    assert [launch.stdout.readline() for _ in range(2)] == ['ready\n'] * 2
    launch.send_signal(signal.SIGTERM)
    assert launch.wait(timeout=60) == 75
    assert launch.stderr.read() == ''
    assert _logs(tmp_path) == []  # removed: nothing failed
