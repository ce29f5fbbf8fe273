"""tools/misc/make_knn_memory_set.py: a fixed, class-balanced subset as an
MMPretrain annotation file."""
import subprocess
import sys

from mmpretrain.datasets import CustomDataset

from ..conftest import ROOT

TOOL = ROOT / 'tools' / 'misc' / 'make_knn_memory_set.py'


def run_tool(*args):
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60)


def test_memory_set_is_fixed_balanced_and_nested(image_folder, tmp_path):
    result = run_tool(image_folder, '--per-class', 3, '--out',
                      tmp_path / 'm3.txt')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f'make_knn_memory_set.py: wrote {tmp_path / "m3.txt"}: 6 images of '
        'the train split (2 classes x 3)')
    lines = (tmp_path / 'm3.txt').read_text().splitlines()
    assert [line.split()[1] for line in lines] == ['0'] * 3 + ['1'] * 3

    # MMPretrain reads it; the 2-per-class set is the first 2 of each class.
    memory = CustomDataset(
        data_root=image_folder,
        ann_file=str(tmp_path / 'm3.txt'),
        data_prefix='train')
    assert list(memory.get_gt_labels()) == [0, 0, 0, 1, 1, 1]
    assert run_tool(image_folder, '--per-class', 2, '--out',
                    tmp_path / 'm2.txt').returncode == 0
    assert (tmp_path / 'm2.txt').read_text().splitlines() == \
        lines[:2] + lines[3:5]

    # Without meta/train.txt the class folders give the same choice.
    folder = tmp_path / 'folders'
    for line in lines + ['n00000000/extra.txt 0']:
        path = folder / 'train' / line.split()[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'')
    assert run_tool(folder, '--per-class', 3).returncode == 0
    assert (folder / 'meta' / 'knn_memory_3.txt').read_text().splitlines() \
        == lines


def test_too_few_images_is_one_line(image_folder, tmp_path):
    result = run_tool(image_folder, '--per-class', 9, '--out',
                      tmp_path / 'm.txt')
    assert result.returncode == 1
    assert result.stderr.strip() == ('make_knn_memory_set.py: error: class 0 '
                                     'has 8 images, fewer than --per-class 9.')
    result = run_tool(tmp_path / 'none')
    assert result.returncode == 1
    assert result.stderr.strip().startswith(
        'make_knn_memory_set.py: error: neither ')
