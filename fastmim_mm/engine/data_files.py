"""Dataset annotation files checked before MMPretrain reads them.

An empty ``meta/train.txt`` ends in NumPy's "need at least one array to
concatenate", and an ImageNet-layout subset without a meta file in an
assertion about 1000 classes; both are found here from the config first.
"""
import os
import os.path as osp
from typing import Iterator, Tuple

from mmengine.config import Config

_FOLDER_DATASETS = ('ImageNet', 'CustomDataset')
_IMAGENET_CLASSES = 1000


def _datasets(cfg: Config) -> Iterator[Tuple[str, dict]]:
    """(config key, dataset config) of every dataset the loaders build,
    wrapped ones included."""
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
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


def check_dataset_files(cfg: Config) -> None:
    """Raise ValueError for an empty annotation file, or an ImageNet
    dataset without one whose folder does not hold its classes."""
    for name, dataset in _datasets(cfg):
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
