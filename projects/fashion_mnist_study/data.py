"""Fashion-MNIST for the study: the IDX files (from the Debian package's
folder or ``--idx-dir``), un-gzipped where MMPretrain's ``FashionMNIST``
reads them, and the labelled subset every arm is fine-tuned on."""
import gzip
import os
import os.path as osp
import shutil

import torch
from mmpretrain.datasets.mnist import read_label_file

from .console import fail, log

DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
DEBIAN_PACKAGE = 'dataset-fashion-mnist'
IDX_FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
             't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')
CLASSES = 10


def idx_count(path: str) -> int:
    """Number of items in an IDX file, from its header; -1 if ``path`` is
    no IDX file."""
    if not osp.isfile(path):
        return -1
    opener = gzip.open if path.endswith('.gz') else open
    try:
        with opener(path, 'rb') as f:
            header = f.read(8)
    except (OSError, EOFError):
        return -1
    if len(header) < 8 or header[:2] != b'\x00\x00':
        return -1
    return int.from_bytes(header[4:8], 'big')


def find_idx(folder: str) -> dict:
    """The IDX files in ``folder`` (gzipped or not), by name."""
    found = {}
    for name in IDX_FILES:
        for candidate in (name, name + '.gz'):
            if osp.isfile(osp.join(folder, candidate)):
                found[name] = osp.join(folder, candidate)
                break
    return found


def prepare_data(idx_dir, data_dir: str) -> str:
    """Un-gzip the four IDX files into ``data_dir`` and return it.

    Without ``idx_dir``, files already in ``data_dir`` are used, else those
    of the Debian package; when that is not installed, one line says how to
    install it (or to pass ``--idx-dir``) and the study exits.
    """
    if idx_dir is None:
        if all(idx_count(osp.join(data_dir, n)) > 0 for n in IDX_FILES):
            return data_dir
        idx_dir = DEBIAN_DIR
        if len(find_idx(idx_dir)) < len(IDX_FILES):
            fail(f'Fashion-MNIST not found in {DEBIAN_DIR}: install it with '
                 f'`sudo apt-get install {DEBIAN_PACKAGE}`, or pass '
                 '--idx-dir FOLDER with its four IDX files.')
    found = find_idx(idx_dir)
    missing = [n for n in IDX_FILES if n not in found]
    if missing:
        fail(f'--idx-dir {idx_dir}: {", ".join(missing)} missing (.gz or '
             'not); the folder needs the four Fashion-MNIST IDX files.')
    for split in ('train', 't10k'):
        images, labels = (
            found[f'{split}-{kind}']
            for kind in ('images-idx3-ubyte', 'labels-idx1-ubyte'))
        if idx_count(images) < 1 or idx_count(images) != idx_count(labels):
            fail(f'{images} and {labels} are not a pair of IDX files with '
                 'as many images as labels.')
    os.makedirs(data_dir, exist_ok=True)
    for name, src in found.items():
        dst = osp.join(data_dir, name)
        opener = gzip.open if src.endswith('.gz') else open
        with opener(src, 'rb') as fin, open(dst + '.tmp', 'wb') as fout:
            shutil.copyfileobj(fin, fout)
        os.replace(dst + '.tmp', dst)
    log(f'data: the IDX files of {idx_dir}, un-gzipped in {data_dir}')
    return data_dir


def labelled_subset(data_dir: str, per_class: int) -> list:
    """The first ``per_class`` training images of each class (file order,
    which Fashion-MNIST already shuffles)."""
    labels = read_label_file(osp.join(data_dir, 'train-labels-idx1-ubyte'))
    chosen = []
    for c in range(CLASSES):
        chosen += torch.nonzero(labels == c)[:per_class, 0].tolist()
    if len(chosen) < per_class * CLASSES:
        fail(f'the training labels hold fewer than {per_class} images of '
             'some class.')
    return sorted(chosen)


def subset(n):
    """The first n images (None: all)."""
    return None if n is None else list(range(n))
