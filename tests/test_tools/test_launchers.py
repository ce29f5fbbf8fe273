"""tools/dist_train.sh, tools/dist_test.sh and tools/slurm_train.sh find
the project's python, or say in one line that there is no torch."""
import os
import shutil
import subprocess
import sys

import pytest

from ..conftest import ROOT

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
