"""tools/test.py: an MMPretrain config in one process and in two CPU
processes (torchrun, gloo), and its error messages. (MMDetection and
MMSegmentation configs: test_transfer.py.)"""
import os
import subprocess
import sys
import uuid

import mmengine
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

from ..conftest import DEMO_CONFIG, ROOT, free_port, load_tool

TEST_PY = ROOT / 'tools' / 'test.py'


@pytest.fixture(scope='module')
def tools_test():
    return load_tool('test.py')


@pytest.fixture
def classifier(tmp_path, image_folder):
    """A tiny ViT classifier config over the 16-image folder, and a
    checkpoint of it."""
    cfg = Config(
        dict(
            default_scope='mmpretrain',
            # Runners made in the same second would share loggers otherwise.
            experiment_name=f'test_{uuid.uuid4().hex[:8]}',
            work_dir=str(tmp_path / 'work'),
            log_level='WARNING',
            model=dict(
                type='ImageClassifier',
                data_preprocessor=dict(
                    num_classes=2,
                    mean=[123.675, 116.28, 103.53],
                    std=[58.395, 57.12, 57.375],
                    to_rgb=True),
                backbone=dict(
                    type='VisionTransformer',
                    arch=dict(
                        embed_dims=32,
                        num_layers=1,
                        num_heads=2,
                        feedforward_channels=64),
                    img_size=64),
                head=dict(
                    type='LinearClsHead',
                    num_classes=2,
                    in_channels=32,
                    loss=dict(type='CrossEntropyLoss'))),
            test_dataloader=dict(
                batch_size=4,
                num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=dict(
                    type='CustomDataset',
                    data_root=image_folder,
                    ann_file='meta/train.txt',
                    data_prefix='train',
                    pipeline=[
                        dict(type='LoadImageFromFile'),
                        dict(type='Resize', scale=(64, 64)),
                        dict(type='PackInputs')
                    ])),
            test_evaluator=dict(type='Accuracy', topk=(1, )),
            test_cfg=dict()))
    path = tmp_path / 'classifier.py'
    cfg.dump(str(path))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
    ckpt = tmp_path / 'classifier.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), str(ckpt))
    return str(path), str(ckpt)


def test_mmpretrain_config(tools_test, classifier, tmp_path):
    config, ckpt = classifier
    out = tmp_path / 'predictions.pkl'
    metrics = tools_test.main([
        config, ckpt, '--work-dir',
        str(tmp_path / 'one'), '--out',
        str(out), '--cfg-options', 'test_dataloader.batch_size=8',
        f'experiment_name=one_{uuid.uuid4().hex[:8]}'
    ])
    assert set(metrics) == {'accuracy/top1'}
    assert 0 <= metrics['accuracy/top1'] <= 100
    assert out.stat().st_size > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU processes')
def test_two_cpu_processes(classifier, tmp_path, tools_test):
    config, ckpt = classifier
    single = tools_test.main([
        config, ckpt, '--work-dir',
        str(tmp_path / 'single'), '--cfg-options',
        f'experiment_name=single_{uuid.uuid4().hex[:8]}'
    ])
    env = dict(
        os.environ,
        OMP_NUM_THREADS='1',
        PYTHONPATH=f'{ROOT}:{os.environ.get("PYTHONPATH", "")}')
    result = subprocess.run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        f'--master_port={free_port()}',
        str(TEST_PY), config, ckpt, '--launcher', 'pytorch', '--work-dir',
        str(tmp_path / 'two'), '--out',
        str(tmp_path / 'two.pkl')
    ],
                            cwd=ROOT,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # Both processes evaluated half the images; rank 0 gathers the
    # predictions of all of them, as one process has them. (They are read
    # from --out, which rank 0 alone writes: MMEngine's LoggerHook writes
    # the metrics' JSON from every process, so two writes can overlap.)
    predictions = mmengine.load(str(tmp_path / 'two.pkl'))
    assert len(predictions) == 16
    two = 100 * sum(
        int(p['pred_label'][0] == p['gt_label'][0])
        for p in predictions) / len(predictions)
    assert two == pytest.approx(single['accuracy/top1'])


def test_errors_are_one_clear_line(classifier, tmp_path, tools_test, capsys):
    config, ckpt = classifier
    for argv, message in (
        (['no/such/config.py', ckpt], 'no/such/config.py does not exist'),
        ([config,
          str(tmp_path / 'missing.pth')], 'missing.pth does not exist'),
        ([config, ckpt, '--out',
          str(tmp_path / 'out.json')], 'must be a .pkl or .pickle file'),
    ):
        with pytest.raises(SystemExit):
            tools_test.main(argv)
        assert 'test.py: error: ' in (err := capsys.readouterr().err)
        assert message in err
    # A pre-training config has nothing to test: one line, no traceback.
    result = subprocess.run(
        [sys.executable, str(TEST_PY),
         str(DEMO_CONFIG), ckpt],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300)
    assert result.returncode == 1
    assert 'test.py: error:' in result.stderr
    assert 'no test_dataloader' in result.stderr
    assert 'Traceback' not in result.stderr
