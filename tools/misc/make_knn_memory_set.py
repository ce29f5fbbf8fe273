"""Write a fixed, class-balanced part of an ImageNet-layout split as an
MMPretrain annotation file, for the online kNN evaluation
(``configs/_base_/datasets/imagenet_knn-eval-128px.py``).

The images of each class are those of ``DATA_ROOT/meta/SPLIT.txt``
(``relative/path label`` per line, MMPretrain's format), or, without that
file, of the class folders ``DATA_ROOT/SPLIT/<class>/`` (labels in the
sorted order of the folder names, as MMPretrain assigns them). Of each
class, the ``--per-class`` images whose paths have the smallest SHA-1 hash
are kept: the choice depends on nothing but the paths (not on the order
of the file, the machine or a library's random generator), and a smaller
``--per-class`` picks a subset of a larger one. The file lists them by
class, then by that hash, so the first n of each class, which
``KNNAccuracy(few_shot=...)`` uses, are the n-image choice.

Examples::

    # memory set: 100 training images per class -> meta/knn_memory_100.txt
    python tools/misc/make_knn_memory_set.py data/imagenet
    # a fixed 10-per-class part of the validation images as queries
    python tools/misc/make_knn_memory_set.py data/imagenet --split val \\
        --per-class 10 --out data/imagenet/meta/knn_val_10.txt
"""
import argparse
import hashlib
import os
import os.path as osp
import sys
from collections import defaultdict

PROG = 'make_knn_memory_set.py'
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                  '.tiff', '.webp')


def fail(message: str):
    print(f'{PROG}: error: {message}', file=sys.stderr)
    sys.exit(1)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write a class-balanced kNN memory set (see the module '
        'docstring).')
    parser.add_argument('data_root', help='dataset root, e.g. data/imagenet')
    parser.add_argument(
        '--split', default='train', help='split to draw from (train)')
    parser.add_argument(
        '--per-class', type=int, default=100, help='images per class (100)')
    parser.add_argument(
        '--out',
        help='annotation file to write (default: '
        'DATA_ROOT/meta/knn_memory_PER-CLASS.txt; with --split other than '
        'train, DATA_ROOT/meta/knn_SPLIT_PER-CLASS.txt)')
    args = parser.parse_args(argv)
    if args.per_class < 1:
        fail(f'--per-class must be at least 1, got {args.per_class}.')
    return args


def read_annotations(data_root: str, split: str) -> dict:
    """``{label: [relative paths]}`` of a split."""
    by_class = defaultdict(list)
    ann_file = osp.join(data_root, 'meta', f'{split}.txt')
    folder = osp.join(data_root, split)
    if osp.isfile(ann_file):
        with open(ann_file) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                path, _, label = line.strip().rpartition(' ')
                if not path or not label.isdigit():
                    fail(f'{ann_file}, line {n}: expected "relative/path '
                         f'label", got {line.strip()!r}.')
                by_class[int(label)].append(path)
    elif osp.isdir(folder):
        classes = sorted(e.name for e in os.scandir(folder) if e.is_dir())
        for label, name in enumerate(classes):
            for root, _, files in os.walk(osp.join(folder, name)):
                for file in files:
                    if file.lower().endswith(IMG_EXTENSIONS):
                        by_class[label].append(
                            osp.relpath(osp.join(root, file), folder))
    else:
        fail(f'neither {ann_file} nor the folder {folder} exists; give the '
             'dataset root that holds meta/ or the split folder.')
    if not by_class:
        fail(f'no images listed for the split {split!r} under {data_root}.')
    return by_class


def path_hash(path: str) -> str:
    return hashlib.sha1(path.replace(os.sep, '/').encode()).hexdigest()


def choose(by_class: dict, per_class: int) -> list:
    """``(path, label)`` of the chosen images, by class then by hash."""
    chosen = []
    for label in sorted(by_class):
        paths = sorted(by_class[label], key=lambda p: (path_hash(p), p))
        if len(paths) < per_class:
            fail(f'class {label} has {len(paths)} images, fewer than '
                 f'--per-class {per_class}.')
        chosen += [(p, label) for p in paths[:per_class]]
    return chosen


def main(argv=None):
    args = parse_args(argv)
    out = args.out
    if out is None:
        name = 'knn_memory' if args.split == 'train' else f'knn_{args.split}'
        out = osp.join(args.data_root, 'meta', f'{name}_{args.per_class}.txt')
    chosen = choose(
        read_annotations(args.data_root, args.split), args.per_class)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out + '.tmp', 'w') as f:
        f.writelines(f'{path} {label}\n' for path, label in chosen)
    os.replace(out + '.tmp', out)
    classes = len({label for _, label in chosen})
    print(f'{PROG}: wrote {out}: {len(chosen)} images of the {args.split} '
          f'split ({classes} classes x {args.per_class})')


if __name__ == '__main__':
    main()
