"""Dataset folders and annotation files checked before the datasets read
them.

A ``data_root`` that does not exist ends in the dataset's own error about
some file below it, an empty ``meta/train.txt`` in NumPy's "need at least
one array to concatenate", and an ImageNet-layout subset without a meta
file in an assertion about 1000 classes; all are found here from the config
first, each naming the setting.
"""
import os
import os.path as osp
import re
from typing import Iterator, Sequence, Tuple

from mmengine.config import Config

_FOLDER_DATASETS = ('ImageNet', 'CustomDataset')
_IMAGENET_CLASSES = 1000


def _datasets(cfg: Config,
              loaders: Sequence[str]) -> Iterator[Tuple[str, dict]]:
    """(config key, dataset config) of every dataset the ``loaders`` build,
    wrapped ones included."""
    for key in loaders:
        loader = cfg.get(key)
        stack = [(f'{key}.dataset',
                  loader.get('dataset'))] if isinstance(loader, dict) else []
        while stack:
            name, dataset = stack.pop()
            if not isinstance(dataset, dict):
                continue
            yield name, dataset
            stack.append((f'{name}.dataset', dataset.get('dataset')))
            stack.extend((f'{name}.datasets.{i}', d)
                         for i, d in enumerate(dataset.get('datasets') or []))


def missing_local_file(path) -> bool:
    """Whether ``path`` is a local path (not a URL, ``torchvision://...``
    or the like) that does not exist."""
    return isinstance(path, str) and bool(path) and not re.match(
        r'^[A-Za-z][\w+.-]*:', path) and not osp.exists(path)


def _evaluators(cfg: Config, loaders: Sequence[str]):
    """(config key, metric config) of the evaluators of ``loaders``."""
    for loader in loaders:
        key = loader.replace('_dataloader', '_evaluator')
        if key == 'train_evaluator' or cfg.get(key) is None:
            continue
        metrics = cfg.get(key)
        if isinstance(metrics, dict) and 'metrics' in metrics:
            key, metrics = f'{key}.metrics', metrics['metrics']
        if isinstance(metrics, dict):
            yield key, metrics
        else:
            for i, metric in enumerate(metrics):
                yield f'{key}.{i}', metric


def check_dataset_files(cfg: Config, loaders: Sequence[str]) -> None:
    """Raise ValueError for a ``data_root`` or an evaluator's ``ann_file``
    that does not exist, an empty annotation file, or an ImageNet dataset
    without one whose folder does not hold its classes.

    Args:
        cfg (Config): The config.
        loaders (Sequence[str]): The data loaders the run builds.
    """
    for name, dataset in _datasets(cfg, loaders):
        if missing_local_file(dataset.get('data_root')):
            raise ValueError(
                f'{name}.data_root: {dataset["data_root"]} does not exist. '
                f'Give the dataset\'s folder with --cfg-options '
                f'{name}.data_root=PATH')
        kind = str(dataset.get('type', '')).split('.')[-1]
        if kind not in _FOLDER_DATASETS:
            continue
        root = dataset.get('data_root') or ''
        ann_file = dataset.get('ann_file') or ''
        split = dataset.get('split') or ''
        prefix = dataset.get('data_prefix') or split
        folder = osp.join(root, prefix) if isinstance(prefix, str) else root
        if not ann_file and kind == 'ImageNet' and split:
            meta = osp.join(root, 'meta', f'{split}.txt')
            if osp.isfile(meta):
                ann_file = meta
            elif osp.isdir(folder):
                classes = (dataset.get('metainfo') or {}).get('classes')
                expected = len(classes) if classes else _IMAGENET_CLASSES
                found = sum(entry.is_dir() for entry in os.scandir(folder))
                if found != expected:
                    raise ValueError(
                        f'{meta} does not exist, so {name} (ImageNet) reads '
                        f'the class folders of {folder} and needs '
                        f'{expected}; it found {found}. For a subset, list '
                        f'its images in {meta} ("n01440764/x.JPEG 0" '
                        f"lines), or set {name}.type='CustomDataset' "
                        f'(classes from the folder names).')
        if not ann_file:
            continue
        path = ann_file if osp.isabs(ann_file) else osp.join(root, ann_file)
        if osp.isfile(path):
            with open(path) as f:
                if any(line.strip() for line in f):
                    continue
            raise ValueError(
                f'{path} ({name}.ann_file) is empty: list the images in it, '
                f'one "relative/path.JPEG label" line each, or set '
                f"{name}.ann_file='' to read the class folders of "
                f'{folder}.')
    for name, metric in _evaluators(cfg, loaders):
        if isinstance(metric, dict) and missing_local_file(
                metric.get('ann_file')):
            raise ValueError(
                f'{name}.ann_file: {metric["ann_file"]} does not exist. Give '
                f'the annotation file to evaluate against with '
                f'--cfg-options {name}.ann_file=PATH')
