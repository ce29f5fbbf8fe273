"""Settings that do not fit each other stop tools/train.py before anything
is built, in one line naming them: the crop vs the model's input size, an
empty annotation file, an ImageNet subset without one."""
import pytest

from ..conftest import CONFIG_DIR, DEMO_CONFIG, run_train_py

VIT_B = CONFIG_DIR / 'fastmim' / \
    'fastmim_vit-base-p16_8xb512-amp-coslr-400e_in1k-128px.py'


def test_pretraining_checks_the_crop_against_input_size(tmp_path):
    result = run_train_py(
        DEMO_CONFIG, '--work-dir', tmp_path, '--cfg-options',
        'train_dataloader.dataset.dataset.pipeline.0.scale=160')
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert 'train.py: error: the train pipeline makes 160x160 px images ' \
        '(DecodeRandomResizedCrop scale=160), but model.input_size=128: ' \
        'set model.input_size=160' in result.stderr


def _error(train_module, capsys, argv):
    with pytest.raises(SystemExit) as info:
        train_module.main([str(a) for a in argv])
    assert info.value.code == 1
    err = capsys.readouterr().err
    return [line for line in err.splitlines() if 'error:' in line][0]


def test_annotation_files_are_checked(train_module, capsys, tmp_path):
    root = tmp_path / 'data'
    (root / 'meta').mkdir(parents=True)
    (root / 'meta' / 'train.txt').write_text('\n')
    line = _error(train_module, capsys, [
        DEMO_CONFIG, '--work-dir', tmp_path, '--cfg-options',
        f'train_dataloader.dataset.dataset.data_root={root}'
    ])
    assert line == (
        f'train.py: error: {root}/meta/train.txt (train_dataloader.dataset.'
        f'dataset.ann_file) is empty: list the images in it, one '
        f'"relative/path.JPEG label" line each, or set '
        f"train_dataloader.dataset.dataset.ann_file='' to read the class "
        f'folders of {root}/train.')

    # An ImageNet-layout subset: 3 class folders, no meta/train.txt.
    (root / 'meta' / 'train.txt').unlink()
    for wnid in ('n01440764', 'n01443537', 'n01484850'):
        (root / 'train' / wnid).mkdir(parents=True)
    line = _error(train_module, capsys, [
        VIT_B, '--work-dir', tmp_path, '--cfg-options',
        f'train_dataloader.dataset.dataset.data_root={root}'
    ])
    assert f'{root}/meta/train.txt does not exist, so train_dataloader.' \
        f'dataset.dataset (ImageNet) reads the class folders of ' \
        f'{root}/train and needs 1000; it found 3.' in line
    assert "set train_dataloader.dataset.dataset.type='CustomDataset'" in line
