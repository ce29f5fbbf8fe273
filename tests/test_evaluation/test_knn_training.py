"""The online kNN evaluation in a pre-training through tools/train.py and
tools/dist_train.sh (2 CPU processes)."""
import json
import re

import pytest

from ..conftest import run_train_py
from ..test_engine.test_distributed import _dist_train
from .knn_configs import knn_run_config

KEYS = ('knn/top1', 'knn/top5', 'knn/1shot_top1', 'knn/1shot_top5')


def val_records(work_dir):
    """The validation lines of a run's scalars.json."""
    (path, ) = work_dir.glob('*/vis_data/scalars.json')
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in records if 'iter' not in r]


def untimed(records):
    return [{k: v for k, v in r.items() if 'time' not in k} for r in records]


def test_knn_every_epoch_and_the_same_in_two_processes(tmp_path, image_folder):
    one = knn_run_config(
        tmp_path / 'one', image_folder, batch_size=8, log_level='INFO')
    one.default_hooks.checkpoint.save_best = 'knn/top1'
    one.dump(str(tmp_path / 'one.py'))
    result = run_train_py(tmp_path / 'one.py', OMP_NUM_THREADS='1')
    assert result.returncode == 0, result.stderr[-3000:]

    # One kNN line per epoch on the console and in the scalars file.
    lines = re.findall(r'Epoch\(val\) \[(\d+)\]\S*\s+(knn/top1: .*)',
                       result.stdout)
    assert [epoch for epoch, _ in lines] == ['1', '2']
    assert all(f'{key}: ' in line for _, line in lines for key in KEYS)
    records = val_records(tmp_path / 'one')
    assert [r['step'] for r in records] == [1, 2]
    for r in records:
        # 7 queries, each counted once: multiples of 100 / 7.
        for key in KEYS:
            assert r[key] * 7 / 100 == pytest.approx(round(r[key] * 7 / 100))
    best = list((tmp_path / 'one').glob('best_knn_top1_epoch_*.pth'))
    assert len(best) == 1

    two = knn_run_config(tmp_path / 'two', image_folder, batch_size=4)
    two.dump(str(tmp_path / 'two.py'))
    result = _dist_train(str(tmp_path / 'two.py'))
    assert result.returncode == 0, result.stderr[-3000:]
    # 17 images over 2 processes, one padded: the same numbers.
    assert untimed(val_records(tmp_path / 'two')) == untimed(records)
