"""Every checkpoint a run loads is checked: a file that is not a checkpoint,
or one that does not fit the model, ends tools/train.py, tools/test.py and
the converter with one line that names the file (no traceback); expected
differences (resized position embeddings, the final norm swapped for
pooling, BEiT's additions) pass with one summary line."""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS

from fastmim_mm.engine import (CheckedLoading, CheckpointFileError,
                               CheckpointMismatchError, read_checkpoint)
from fastmim_mm.engine.checkpoint_fit import check_fit
from ..conftest import (ROOT, TINY_SWIN, TINY_VIT, load_tool, run_train_py,
                        runner_config)
from ..test_finetune_configs import tiny_finetune_config

TEST_PY = ROOT / 'tools' / 'test.py'
CONVERTER = ROOT / 'tools' / 'model_converters' / 'fastmim_official_to_mm.py'


def run_tool(script, *args):
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=300)


def error_line(result, prefix):
    """The one error line of a failed run; no traceback."""
    assert result.returncode != 0, result.stdout[-2000:]
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    lines = [
        line for line in result.stderr.splitlines() if line.startswith(prefix)
    ]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def fails(train_module, capsys, argv):
    with pytest.raises(SystemExit) as info:
        train_module.main([str(a) for a in argv])
    assert info.value.code == 1
    err = capsys.readouterr().err
    return [line for line in err.splitlines() if 'error:' in line][0]


def pretrain_state(model_cfg):
    torch.manual_seed(0)
    return MODELS.build(model_cfg).state_dict()


@pytest.fixture(scope='module')
def files(tmp_path_factory, image_folder):
    """A checkpoint and things that are not checkpoints."""
    root = tmp_path_factory.mktemp('files')
    good = root / 'good.pth'
    torch.save(dict(state_dict=pretrain_state(TINY_VIT)), good)
    text = root / 'notes.pth'
    text.write_text('epoch 1, loss 0.52\n')
    empty = root / 'empty.pth'
    empty.write_bytes(b'')
    truncated = root / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    binary = root / 'random.pth'
    binary.write_bytes(np.random.RandomState(0).bytes(3000))
    directory = root / 'work_dir'
    directory.mkdir()
    official = root / 'official.pth'
    torch.save({'model': {}, 'args': argparse.Namespace(lr=1e-3)}, official)
    return dict(
        good=good,
        text=text,
        empty=empty,
        truncated=truncated,
        binary=binary,
        directory=directory,
        official=official,
        jpeg=next(Path(image_folder, 'train').rglob('*.JPEG')))


@pytest.mark.parametrize('kind,says', [
    ('text', 'is a text file, not a PyTorch checkpoint'),
    ('jpeg', 'is a JPEG image, not a PyTorch checkpoint'),
    ('empty', 'is empty (0 bytes)'),
    ('truncated', 'is truncated or damaged'),
    ('binary', 'is not a PyTorch checkpoint (unpickling stopped: '),
    ('directory', 'is a directory, not a checkpoint file'),
])
def test_read_checkpoint_says_what_the_file_is(files, kind, says):
    with pytest.raises(CheckpointFileError) as info:
        read_checkpoint(str(files[kind]))
    message = str(info.value)
    assert message.startswith(str(files[kind])) and says in message
    assert '\n' not in message and 'weights_only' not in message
    assert read_checkpoint(str(files['good']))['state_dict']


def test_refused_objects_are_named_without_suggesting_unsafe_loading(files):
    with pytest.raises(CheckpointFileError) as info:
        read_checkpoint(str(files['official']), refused_hint='Convert it.')
    message = str(info.value)
    assert 'argparse.Namespace' in message and message.endswith('Convert it.')
    assert 'weights_only' not in message


@pytest.fixture(scope='module')
def tiny_pretrain(tmp_path_factory, image_folder):
    """The tiny ViT pre-training config, as a file."""
    root = tmp_path_factory.mktemp('pretrain_cfg')
    cfg = runner_config(root / 'work', image_folder, custom_hooks=[])
    cfg.dump(str(root / 'cfg.py'))
    return root / 'cfg.py'


def test_train_py_names_a_file_that_is_not_a_checkpoint(
        tiny_pretrain, files, tmp_path):
    result = run_train_py(tiny_pretrain, '--work-dir', tmp_path, '--resume',
                          files['text'])
    line = error_line(result, 'train.py: error:')
    assert f'{files["text"]} is a text file' in line


def test_load_from_an_image(train_module, tiny_pretrain, files, tmp_path,
                            capsys):
    line = fails(train_module, capsys, [
        tiny_pretrain, '--work-dir', tmp_path, '--cfg-options',
        f'load_from={files["jpeg"]}'
    ])
    assert line == f'train.py: error: {files["jpeg"]} is a JPEG image, not ' \
        f'a PyTorch checkpoint.'


def test_test_py_and_converter_name_a_file_that_is_not_a_checkpoint(
        files, image_folder, tmp_path):
    cfg = tiny_finetune_config(image_folder, files['good'], 'test_py_bad')
    cfg.dump(str(tmp_path / 'cfg.py'))
    result = run_tool(TEST_PY, tmp_path / 'cfg.py', files['truncated'],
                      '--work-dir', tmp_path)
    line = error_line(result, 'test.py: error:')
    assert f'{files["truncated"]} is truncated or damaged' in line

    result = run_tool(CONVERTER, files['empty'], tmp_path / 'out.pth')
    assert result.returncode == 2
    assert f'{files["empty"]} is empty' in error_line(result, 'error:')
    assert not (tmp_path / 'out.pth').exists()


def test_directory_and_init_cfg_in_process(train_module, tiny_pretrain, files,
                                           image_folder, tmp_path, capsys):
    directory = files['directory']
    line = fails(
        train_module, capsys,
        [tiny_pretrain, '--work-dir', tmp_path / 'a', '--resume', directory])
    assert line == f'train.py: error: {directory} is a directory, not a ' \
        f'checkpoint file: give the .pth file in it.'

    cfg = tiny_finetune_config(image_folder, files['empty'], 'empty_init')
    cfg.dump(str(tmp_path / 'cfg.py'))
    line = fails(train_module, capsys,
                 [tmp_path / 'cfg.py', '--work-dir', tmp_path / 'b'])
    assert line.startswith(f'train.py: error: {files["empty"]} is empty')

    tools_test = load_tool('test.py')
    with pytest.raises(SystemExit):
        tools_test.main([str(tmp_path / 'cfg.py'), str(directory)])
    assert f'test.py: error: {directory} is a directory' in \
        capsys.readouterr().err


def test_swin_checkpoint_for_vit_finetuning_stops(image_folder, tmp_path):
    """The issue's case: a Swin checkpoint given to the ViT fine-tuning
    config used to fine-tune from random weights after a warning."""
    swin = tmp_path / 'swin.pth'
    torch.save(dict(state_dict=pretrain_state(TINY_SWIN)), swin)
    cfg = tiny_finetune_config(image_folder, swin, 'swin_into_vit')
    cfg.dump(str(tmp_path / 'cfg.py'))
    result = run_train_py(tmp_path / 'cfg.py', '--work-dir', tmp_path)
    line = error_line(result, 'train.py: error:')
    assert f'{swin} does not fit the VisionTransformer it initialises' in line
    assert 'patch_embed.projection.weight: checkpoint (32, 3, 4, 4) vs ' \
        'model (64, 3, 16, 16)' in line
    assert 'another architecture: the checkpoint holds a Swin (depths ' \
        '1-1-1-1, 32 wide, 4 px patches), the model is a ViT (2 blocks, ' \
        '64 wide, 16 px patches)' in line
    assert not list(tmp_path.rglob('epoch_*.pth'))


def test_layout_and_resume_mismatches_name_the_cause(train_module, capsys,
                                                     image_folder,
                                                     tiny_pretrain, files,
                                                     tmp_path):
    # An official (timm-style) checkpoint given to init_cfg.
    official = tmp_path / 'official.pth'
    torch.save(
        {
            'blocks.0.mlp.fc1.weight': torch.ones(256, 64),
            'patch_embed.proj.weight': torch.zeros(64, 3, 16, 16)
        }, official)
    cfg = tiny_finetune_config(image_folder, official, 'official_layout')
    cfg.dump(str(tmp_path / 'official.py'))
    line = fails(train_module, capsys,
                 [tmp_path / 'official.py', '--work-dir', tmp_path / 'a'])
    assert f"{official} has no tensor under the prefix 'backbone.'" in line
    assert 'fastmim_official_to_mm.py' in line

    # A pre-training checkpoint given as load_from to a classifier.
    cfg = tiny_finetune_config(image_folder, files['good'], 'pre_load_from')
    cfg.load_from = str(files['good'])
    cfg.dump(str(tmp_path / 'load_from.py'))
    line = fails(train_module, capsys,
                 [tmp_path / 'load_from.py', '--work-dir', tmp_path / 'b'])
    assert f'{files["good"]} does not fit the ImageClassifier model' in line
    assert 'are in the checkpoint only (mask_token' in line
    assert 'a FastMIM pre-training checkpoint' in line

    # --resume from a checkpoint of another model.
    swin = tmp_path / 'swin_resume.pth'
    torch.save(
        dict(state_dict=pretrain_state(TINY_SWIN), meta=dict(epoch=1, iter=4)),
        swin)
    line = fails(
        train_module, capsys,
        [tiny_pretrain, '--work-dir', tmp_path / 'c', '--resume', swin])
    assert f'{swin} does not fit the FastMIM model' in line
    assert 'resume with the config it was trained with' in line


def _vit_backbone(num_layers=2, **kwargs):
    arch = dict(TINY_VIT['backbone']['arch'], num_layers=num_layers)
    return MODELS.build(
        dict(
            type='VisionTransformer',
            arch=arch,
            img_size=96,
            patch_size=16,
            **kwargs))


def _backbone_state(model_cfg):
    return {
        k[len('backbone.'):]: v
        for k, v in pretrain_state(model_cfg).items()
        if k.startswith('backbone.')
    }


def test_expected_differences_pass_in_one_summary_line():
    state = _backbone_state(TINY_VIT)  # 64 px: 4 x 4 patches
    finetune = _vit_backbone(out_type='avg_featmap', final_norm=False)
    summary = check_fit(finetune, state, file='pre.pth', prefix='backbone.')
    assert summary.startswith(
        "Loaded pre.pth into the VisionTransformer it initialises (prefix "
        "'backbone.'): 27 of 30 tensors as they are; resized: pos_embed "
        '(1, 17, 64) -> (1, 37, 64);')
    assert 'new output norms: ln2.weight, ln2.bias' in summary
    assert 'output norms not used: ln1.weight, ln1.bias' in summary
    assert '\n' not in summary

    # A BEiT backbone adds relative position bias tables and layer scales.
    beit = MODELS.build(
        dict(
            type='BEiTViT',
            arch=TINY_VIT['backbone']['arch'],
            img_size=96,
            patch_size=16,
            bias=True,
            use_abs_pos_emb=True,
            use_rel_pos_bias=True,
            layer_scale_init_value=0.1,
            out_type='avg_featmap',
            final_norm=False))
    summary = check_fit(beit, state)
    assert 'new in the model: layers.0.gamma_1, layers.0.gamma_2, ... ' \
        '(6 in all)' in summary
    assert 'recomputed: layers.0.attn.relative_position_index' in summary

    # A truncated encoder's checkpoint starts a deeper backbone; a deeper
    # checkpoint does not fit a shallower one.
    summary = check_fit(_vit_backbone(num_layers=3), state)
    assert "blocks beyond the checkpoint's depth, initialised anew: " \
        'layers.2.ln1.weight, layers.2.ln1.bias, ... (12 in all)' in summary
    with pytest.raises(
            CheckpointMismatchError,
            match='12 tensors are in the checkpoint only '
            r'\(layers\.1\.ln1\.weight'):
        check_fit(_vit_backbone(num_layers=1), state)


def test_qv_biases_need_a_backbone_that_splits_the_qkv_bias(tmp_path):
    path = tmp_path / 'vit.pth'
    torch.save(dict(state_dict=pretrain_state(TINY_VIT)), path)
    beit = MODELS.build(
        dict(
            type='BEiTViT',
            arch=TINY_VIT['backbone']['arch'],
            img_size=64,
            patch_size=16,
            bias='qv_bias',
            use_abs_pos_emb=True,
            init_cfg=dict(
                type='Pretrained', checkpoint=str(path), prefix='backbone.')))
    with pytest.raises(
            CheckpointMismatchError,
            match=r'4 tensors of the BEiTViT could not be loaded '
            r'from it \(layers\.0\.attn\.q_bias'), CheckedLoading():
        beit.init_weights()


def test_load_from_into_new_heads():

    def classifier(num_classes):
        return MODELS.build(
            dict(
                type='ImageClassifier',
                backbone=dict(TINY_VIT['backbone'], type='VisionTransformer'),
                neck=None,
                head=dict(
                    type='VisionTransformerClsHead',
                    in_channels=64,
                    num_classes=num_classes)))

    state = classifier(1000).state_dict()
    summary = check_fit(classifier(2), state, file='in1k.pth')
    assert summary == (
        'Loaded in1k.pth into the ImageClassifier model: 30 of 32 tensors '
        'as they are; head/neck tensors of another shape, initialised '
        'anew: head.layers.head.weight (1000, 64) -> (2, 64), '
        'head.layers.head.bias (1000,) -> (2,).')
    state['head.extra.weight'] = torch.zeros(1)  # another head type
    with pytest.raises(
            CheckpointMismatchError,
            match=r'1 tensors are in the checkpoint only '
            r'\(head\.extra\.weight\)'):
        check_fit(classifier(2), state, file='in1k.pth')
