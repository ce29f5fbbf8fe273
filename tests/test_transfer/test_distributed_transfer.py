"""The detection and segmentation configs in 2 CPU processes through
tools/dist_train.sh and tools/dist_test.sh: SyncBN becomes BN with a
warning, shown once however many processes give it, 2 iterations train
after a short console, the checkpoint evaluates."""
import os
import re
import subprocess

from synthetic_downstream import make_ade20k, make_coco_instances

from fastmim_mm.engine import read_checkpoint
from ..conftest import ROOT, free_port
from .test_small_chain import check_console, console_lines
from .test_transfer import detection_config, segmentation_config

SYNC_BN_WARNING = ('No CUDA device: SyncBN layers are replaced by BN, each '
                   'process normalising over its own batch.')


def _launch(script, *args):
    """A launcher as a user runs it: PATH without the project's python."""
    env = dict(
        os.environ,
        PORT=str(free_port()),
        OMP_NUM_THREADS='1',
        PATH='/usr/bin:/bin')
    env.pop('PYTHON', None)
    return subprocess.run(
        ['bash', str(ROOT / 'tools' / script), *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300)


def _train(cfg, tmp_path):
    cfg.model.backbone.init_cfg = None  # the transfer tests load weights
    cfg.custom_hooks = []
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    path = tmp_path / 'config.py'
    cfg.dump(str(path))
    result = _launch('dist_train.sh', path, 2)
    assert result.returncode == 0, result.stderr[-3000:]
    log_file = next((tmp_path / 'train').glob('*/*.log'))
    check_console(
        console_lines(result), log_file,
        [SYNC_BN_WARNING, 'UserWarning: Setting MKL_NUM_THREADS'])
    last = (tmp_path / 'train' / 'last_checkpoint').read_text().strip()
    assert read_checkpoint(last)['meta']['iter'] == 2
    return path, last


def test_mask_rcnn_in_two_cpu_processes(tmp_path):
    coco = make_coco_instances(
        str(tmp_path / 'coco'),
        num_images=4,
        image_size=(128, 96),
        num_classes=2)
    cfg = detection_config(tmp_path / 'train', coco, None)
    cfg.train_cfg.max_epochs = 2  # 4 images, 2 x 2 a step: 1 step an epoch
    _train(cfg, tmp_path)


def test_upernet_in_two_cpu_processes(tmp_path):
    ade = make_ade20k(
        str(tmp_path / 'ade'), num_images=4, image_size=(128, 128))
    cfg = segmentation_config(tmp_path / 'train', ade, None)
    config, checkpoint = _train(cfg, tmp_path)

    # The dumped config has no validation; evaluate with the test set.
    result = _launch('dist_test.sh', config, checkpoint, 2, '--work-dir',
                     tmp_path / 'test', '--cfg-options', 'log_level=INFO')
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r'Iter\(test\) \[2/2\] .*mIoU: [\d.]+', result.stdout)
    assert re.search(
        r'Built EncoderDecoder \(\w+ backbone\); [\d.]+ M '
        r'parameters; test data: 4 samples \(ADE20KDataset in \S+\), batch 1 '
        r'x 2 processes, 2 batches; weights: loaded from ' +
        re.escape(checkpoint), result.stdout)
