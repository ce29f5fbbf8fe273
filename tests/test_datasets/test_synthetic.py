import hashlib
import os

from mmpretrain.datasets import CustomDataset
from synthetic_imagenet import make_imagenet_folder


def _digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            with open(os.path.join(dirpath, name), 'rb') as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


def test_imagenet_layout_is_deterministic_and_loadable(tmp_path):
    a = make_imagenet_folder(
        str(tmp_path / 'a'),
        num_classes=3,
        images_per_class=4,
        image_size=(40, 30))
    b = make_imagenet_folder(
        str(tmp_path / 'b'),
        num_classes=3,
        images_per_class=4,
        image_size=(40, 30))
    assert _digest(a) == _digest(b)
    assert sorted(os.listdir(os.path.join(
        a, 'train'))) == ['n00000000', 'n00000001', 'n00000002']
    with open(os.path.join(a, 'meta', 'train.txt')) as f:
        lines = f.read().splitlines()
    assert len(lines) == 12 and lines[0] == 'n00000000/n00000000_0.JPEG 0'

    dataset = CustomDataset(
        data_root=a,
        ann_file='meta/train.txt',
        data_prefix='train',
        pipeline=[dict(type='LoadImageFromFile')])
    sample = dataset[5]
    assert sample['img'].shape == (30, 40, 3) and sample['gt_label'] == 1
    # Different seeds give different images.
    c = make_imagenet_folder(
        str(tmp_path / 'c'),
        num_classes=3,
        images_per_class=4,
        image_size=(40, 30),
        seed=1)
    assert _digest(c) != _digest(a)
