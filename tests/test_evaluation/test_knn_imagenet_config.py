"""The ImageNet kNN piece, composed with a pre-training config as its
header says, on a small ImageNet-layout folder."""
import os
import shutil

import pytest
from mmengine.config import Config
from mmpretrain.registry import DATASETS, LOOPS, METRICS

from ..conftest import CONFIG_DIR, load_tool

PIECE = CONFIG_DIR / '_base_' / 'datasets' / 'imagenet_knn-eval-128px.py'
VIT_B = CONFIG_DIR / 'fastmim' / \
    'fastmim_vit-base-p16_8xb512-amp-coslr-400e_in1k-128px.py'


def test_piece_switches_the_evaluation_on(tmp_path, image_folder):
    child = tmp_path / 'vit-b_knn.py'
    child.write_text(f'_base_ = [{str(VIT_B)!r}, {str(PIECE)!r}]\n'
                     'train_cfg = dict(val_interval=10)\n'
                     "default_hooks = dict(checkpoint=dict(save_best="
                     "'knn/top1'))\n")
    cfg = Config.fromfile(str(child))
    assert cfg.train_cfg.val_interval == 10
    assert cfg.train_cfg.max_epochs == 400
    assert cfg.default_hooks.checkpoint.save_best == 'knn/top1'
    assert LOOPS.get(cfg.val_cfg.type) is not None
    metric = METRICS.build(cfg.val_evaluator)
    assert (metric.k, metric.temperature, metric.topk,
            metric.few_shot) == (20, 0.07, (1, 5), (1, 5, 10))

    # ImageNet layout: train/ with meta/train.txt, val/ with meta/val.txt.
    root = tmp_path / 'imagenet'
    shutil.copytree(image_folder, root)
    os.symlink(root / 'train', root / 'val')
    shutil.copy(root / 'meta' / 'train.txt', root / 'meta' / 'val.txt')
    dataset_cfg = cfg.val_dataloader.dataset
    dataset_cfg.memory.data_root = dataset_cfg.queries.data_root = str(root)
    with pytest.raises(
            FileNotFoundError,
            match='knn_memory_100.txt.*'
            'make_knn_memory_set.py writes the annotation file'):
        DATASETS.build(dataset_cfg)
    load_tool('misc/make_knn_memory_set.py').main([
        str(root), '--per-class', '3', '--out',
        str(root / 'meta' / 'knn_memory_100.txt')
    ])
    dataset = DATASETS.build(dataset_cfg)
    assert (len(dataset.memory), len(dataset.queries)) == (6, 16)
    for idx, memory, index in ((0, True, 0), (5, True, 5), (6, False, 0),
                               (21, False, 15)):
        data = dataset[idx]
        assert data['inputs'].shape == (3, 128, 128)
        sample = data['data_samples']
        assert (sample.knn_memory, sample.knn_index) == (memory, index)
