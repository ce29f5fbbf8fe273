"""tools/analysis/plot_curves.py on the logs of tiny pre-trainings."""
import subprocess
import sys

import pytest
from mmengine.runner import Runner
from PIL import Image

from ..conftest import ROOT, load_tool
from ..test_evaluation.knn_configs import knn_run_config

TOOL = ROOT / 'tools' / 'analysis' / 'plot_curves.py'


def run_tool(*args):
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120)


@pytest.fixture(scope='module')
def runs(tmp_path_factory, image_folder):
    """Two 2-epoch runs (2 iterations an epoch) with different lrs."""
    dirs = []
    for lr in (3e-4, 3e-3):
        work_dir = tmp_path_factory.mktemp(f'lr{lr}')
        cfg = knn_run_config(work_dir, image_folder, batch_size=8)
        cfg.optim_wrapper.optimizer.lr = lr
        Runner.from_cfg(cfg).train()
        dirs.append(work_dir)
    return dirs


def test_curves_of_two_runs_in_one_png(runs, tmp_path):
    out = tmp_path / 'curves.png'
    result = run_tool(*runs, '--labels', 'slow', 'fast', '--out', out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f'plot_curves.py: wrote {out}: loss, lr, knn/top1, knn/top5, '
        'knn/1shot_top1, knn/1shot_top5 of 2 runs')
    width, height = Image.open(out).size
    assert (width, height) == (1500, 720)  # 3 x 2 panels


def test_values_are_placed_at_their_epoch(runs):
    tool = load_tool('analysis/plot_curves.py')
    run = tool.run_curves(str(runs[1]))
    assert run['by_epoch']
    xs, losses = run['curves']['loss']
    assert xs == [0.5, 1.0, 1.5, 2.0] and len(losses) == 4
    assert run['curves']['lr'][1] == [3e-3] * 4
    xs, top1 = run['curves']['knn/top1']
    assert xs == [1, 2]
    assert all(0 <= v <= 100 for v in top1)


def test_errors_are_one_line(runs, tmp_path):
    result = run_tool(tmp_path / 'nothing')
    assert result.returncode == 1
    assert result.stderr.strip() == \
        f'plot_curves.py: error: {tmp_path / "nothing"}: no such work dir.'
    result = run_tool(runs[0], '--keys', 'loss', 'knn/top2', '--out',
                      tmp_path / 'x.png')
    assert result.returncode == 1
    assert result.stderr.strip().startswith(
        'plot_curves.py: error: --keys: no run logged knn/top2; the logs '
        'hold: ')
    assert 'knn/top1' in result.stderr
    (tmp_path / 'empty').mkdir()
    result = run_tool(tmp_path / 'empty')
    assert result.stderr.strip() == (
        f'plot_curves.py: error: {tmp_path / "empty"} has no '
        '*/vis_data/scalars.json; give the work dir of a run that used '
        "MMEngine's LocalVisBackend.")
