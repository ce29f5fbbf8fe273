"""The synthetic COCO and ADE20K generators: real on-disk formats, readable
by pycocotools, MMDetection and MMSegmentation, deterministic."""
import hashlib
import json
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from PIL import Image
from synthetic_downstream import (coco_class_names, make_ade20k,
                                  make_coco_instances)


def _digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            with open(osp.join(dirpath, name), 'rb') as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco')
    return make_coco_instances(
        str(root), num_images=6, image_size=(128, 96), num_classes=3)


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('ade')
    return make_ade20k(str(root), num_images=4, image_size=(96, 80))


def test_coco_layout_and_annotations(coco_root):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    for split in ('train2017', 'val2017'):
        assert sorted(os.listdir(osp.join(
            coco_root, split))) == [f'{i:012d}.jpg' for i in range(1, 7)]
        ann_file = osp.join(coco_root, 'annotations',
                            f'instances_{split}.json')
        coco = COCO(ann_file)
        # COCO's 80 categories with COCO's ids, as the real files list them
        # (ids 1-90 with gaps); objects of the first three.
        categories = coco.loadCats(coco.getCatIds())
        assert [c['name'] for c in categories] == list(coco_class_names(80))
        assert list(coco_class_names(3)) == ['person', 'bicycle', 'car']
        ids = coco.getCatIds()
        assert len(ids) == 80 and ids[:12] == [*range(1, 12), 13]
        assert ids[-1] == 90 and len(set(ids)) == 80
        for img_id in coco.getImgIds():
            info = coco.loadImgs(img_id)[0]
            w, h = info['width'], info['height']
            with Image.open(osp.join(coco_root, split,
                                     info['file_name'])) as img:
                assert img.size == (w, h) == (128, 96)
                assert img.mode == 'RGB'
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
            assert 1 <= len(anns) <= 3
            for ann in anns:
                assert ann['iscrowd'] == 0 and ann['category_id'] in (1, 2, 3)
                poly = np.array(ann['segmentation'][0]).reshape(-1, 2)
                assert len(poly) >= 3
                assert (poly >= 0).all() and (poly[:, 0] <= w - 1).all() \
                    and (poly[:, 1] <= h - 1).all()
                x, y, bw, bh = ann['bbox']
                np.testing.assert_allclose([x, y, x + bw, y + bh],
                                           [*poly.min(0), *poly.max(0)],
                                           atol=0.02)
                assert bw > 8 and bh > 8
                # The polygon area is the area pycocotools computes.
                rle = mask_utils.merge(
                    mask_utils.frPyObjects(ann['segmentation'], h, w))
                assert abs(mask_utils.area(rle) - ann['area']) < \
                    0.1 * ann['area']
            # Objects do not overlap: each polygon is all of its object.
            masks = np.stack([coco.annToMask(a) for a in anns])
            assert masks.sum(0).max() == 1


def test_coco_is_deterministic(coco_root, tmp_path):
    again = make_coco_instances(
        str(tmp_path / 'again'),
        num_images=6,
        image_size=(128, 96),
        num_classes=3)
    assert _digest(again) == _digest(coco_root)
    other = make_coco_instances(
        str(tmp_path / 'other'),
        num_images=6,
        image_size=(128, 96),
        num_classes=3,
        seed=1)
    assert _digest(other) != _digest(coco_root)


def test_coco_loads_in_mmdet(coco_root):
    """With CocoDataset's own classes (COCO's), as the COCO configs have
    them: no sample or object is filtered out, labels are COCO's."""
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = CocoDataset(
            data_root=coco_root,
            ann_file='annotations/instances_val2017.json',
            data_prefix=dict(img='val2017/'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True)
            ])
        assert len(dataset) == 6
        with open(
                osp.join(coco_root, 'annotations',
                         'instances_val2017.json')) as f:
            coco = json.load(f)
        for i in range(len(dataset)):
            sample = dataset[i]
            anns = [
                a for a in coco['annotations']
                if a['image_id'] == sample['img_id']
            ]
            assert sample['img'].shape == (96, 128, 3)
            assert len(sample['gt_bboxes']) == len(anns)
            assert sorted(sample['gt_bboxes_labels'].tolist()) == sorted(
                a['category_id'] - 1 for a in anns)
            assert sample['gt_masks'].masks.shape == (len(anns), 96, 128)
            # Mask pixels carry the object's texture, not the background's.
            assert (sample['gt_masks'].areas > 50).all()


def test_ade20k_layout_and_labels(ade_root, tmp_path):
    for split, prefix in (('training', 'ADE_train'), ('validation',
                                                      'ADE_val')):
        images = sorted(os.listdir(osp.join(ade_root, 'images', split)))
        labels = sorted(os.listdir(osp.join(ade_root, 'annotations', split)))
        assert images == [f'{prefix}_{i:08d}.jpg' for i in range(1, 5)]
        assert labels == [f'{prefix}_{i:08d}.png' for i in range(1, 5)]
        values = set()
        for name in labels:
            with Image.open(osp.join(ade_root, 'annotations', split,
                                     name)) as png:
                assert png.mode == 'L' and png.size == (96, 80)
                seg = np.asarray(png)
            assert seg.dtype == np.uint8
            assert (seg == 0).any()  # "other" always occurs
            values |= set(np.unique(seg).tolist())
        assert values <= set(range(7)) and len(values) >= 3
    again = make_ade20k(
        str(tmp_path / 'again'), num_images=4, image_size=(96, 80))
    assert _digest(again) == _digest(ade_root)


def test_ade20k_loads_in_mmseg(ade_root):
    from mmseg.datasets import ADE20KDataset
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = ADE20KDataset(
            data_root=ade_root,
            data_prefix=dict(
                img_path='images/validation',
                seg_map_path='annotations/validation'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations')
            ])
        assert len(dataset) == 4 and len(dataset.metainfo['classes']) == 150
        for i in range(len(dataset)):
            sample = dataset[i]
            assert sample['img'].shape == (80, 96, 3)
            seg = sample['gt_seg_map']
            raw = np.asarray(Image.open(sample['seg_map_path']))
            # reduce_zero_label: 0 ("other") -> 255, class k -> k - 1.
            assert ((raw == 0) == (seg == 255)).all()
            np.testing.assert_array_equal(seg[raw > 0], raw[raw > 0] - 1)
