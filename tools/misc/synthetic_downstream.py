"""Small detection and segmentation datasets generated on disk in the real
COCO and ADE20K formats.

They stand in for COCO and ADE20K where nothing can be downloaded (tests,
smoke runs of the transfer configs): MMDetection's ``CocoDataset`` and
MMSegmentation's ``ADE20KDataset`` read them unchanged, and pycocotools
evaluates against them. Every class has its own shape and texture, so a model
has something to learn, and the same seed always gives the same bytes.
"""
import json
import os
import os.path as osp
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw
from synthetic_imagenet import _stripes

# Shapes of the object classes, in class order; class i draws
# _SHAPES[i % len(_SHAPES)].
_SHAPES = ('rectangle', 'ellipse', 'triangle', 'star', 'pentagon', 'diamond',
           'hexagon', 'cross')

# COCO's 80 object categories: (first id, names) per run of consecutive ids.
_COCO_CATEGORY_RUNS = (
    (1, ('person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
         'truck', 'boat', 'traffic light', 'fire hydrant')),
    (13, ('stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse',
          'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe')),
    (27, ('backpack', 'umbrella')),
    (31, ('handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard',
          'sports ball', 'kite', 'baseball bat', 'baseball glove',
          'skateboard', 'surfboard', 'tennis racket', 'bottle')),
    (46, ('wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana',
          'apple', 'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog',
          'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed')),
    (67, ('dining table', )),
    (70, ('toilet', )),
    (72, ('tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
          'microwave', 'oven', 'toaster', 'sink', 'refrigerator')),
    (84, ('book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier',
          'toothbrush')),
)
COCO_CATEGORIES = tuple(
    dict(id=first + i, name=name) for first, names in _COCO_CATEGORY_RUNS
    for i, name in enumerate(names))


def coco_class_names(num_classes: int) -> Tuple[str, ...]:
    """Names of the classes :func:`make_coco_instances` draws objects of:
    the first ``num_classes`` of COCO's 80, in COCO's order (the order of
    MMDetection's ``CocoDataset``, so a COCO config reads the files as they
    are).

    Args:
        num_classes (int): Number of classes, 1 to 80.

    Returns:
        tuple[str]: ``num_classes`` names.
    """
    if not 1 <= num_classes <= len(COCO_CATEGORIES):
        raise ValueError(f'num_classes must be in [1, '
                         f'{len(COCO_CATEGORIES)}] (COCO\'s classes), got '
                         f'{num_classes}')
    return tuple(c['name'] for c in COCO_CATEGORIES[:num_classes])


def _shape_polygon(shape: str, cx: float, cy: float, rx: float, ry: float,
                   angle: float) -> np.ndarray:
    """Vertices (K x 2, float, clockwise in image coordinates) of a shape
    centred at (cx, cy) with half-extents rx, ry, rotated by ``angle``."""
    if shape == 'rectangle':
        t = np.array([45, 135, 225, 315]) * np.pi / 180
        pts = np.stack([np.sign(np.cos(t)), np.sign(np.sin(t))], 1)
    elif shape == 'ellipse':
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif shape == 'star':
        t = np.linspace(0, 2 * np.pi, 10, endpoint=False) - np.pi / 2
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        pts = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    elif shape == 'cross':
        a = 0.35
        pts = np.array([[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a],
                        [a, 1], [-a, 1], [-a, a], [-1, a], [-1, -a], [-a, -a]])
    else:
        sides = dict(triangle=3, pentagon=5, diamond=4, hexagon=6)[shape]
        t = np.linspace(0, 2 * np.pi, sides, endpoint=False) - np.pi / 2
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    if shape != 'ellipse':
        # Unit shapes fill [-1, 1]^2 exactly, whatever their vertex count.
        pts = pts / np.abs(pts).max(0, keepdims=True)
    rot = np.array([[np.cos(angle), -np.sin(angle)],
                    [np.sin(angle), np.cos(angle)]])
    pts = (pts * [rx, ry]) @ rot.T
    return pts + [cx, cy]


def _polygon_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return float(
        abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _class_texture(label: int, seed: int, yy: np.ndarray, xx: np.ndarray,
                   rng: np.random.RandomState) -> np.ndarray:
    """Stripes whose colours and orientation belong to ``label`` (the same in
    every image), with a little per-image jitter from ``rng``."""
    class_rng = np.random.RandomState(seed * 7919 + label * 104729 + 1)
    theta = class_rng.uniform(0, np.pi) + rng.uniform(-0.15, 0.15)
    return _stripes(class_rng, theta, yy, xx)


def make_coco_instances(root: str,
                        num_images: int = 8,
                        image_size: Tuple[int, int] = (128, 96),
                        num_classes: int = 2,
                        seed: int = 0,
                        splits: Sequence[str] = ('train2017', 'val2017'),
                        quality: int = 90) -> str:
    """Write a COCO-format instance segmentation dataset.

    Layout (as COCO 2017 has it)::

        root/train2017/000000000001.jpg ...
        root/val2017/000000000001.jpg ...
        root/annotations/instances_train2017.json
        root/annotations/instances_val2017.json

    The annotation files list COCO's 80 categories with COCO's ids, as the
    real files do, so COCO configs read them unchanged; objects belong to
    the first ``num_classes`` of them (:func:`coco_class_names`). Every
    image has 1 to 3 non-overlapping objects on a striped background. An
    object is a filled polygon (rectangle, ellipse, triangle, star, ...: one
    shape per class) with a class-specific texture; its annotation has the
    polygon as ``segmentation``, its ``bbox`` as [x, y, w, h], its polygon
    ``area``, ``iscrowd`` 0 and its class's COCO ``category_id``. All
    vertices lie inside the image.

    Args:
        root (str): Dataset root.
        num_images (int): Images per split. Defaults to 8.
        image_size (tuple): (width, height) of every image. Defaults to
            (128, 96).
        num_classes (int): Objects are drawn from the first
            ``num_classes`` of COCO's classes (1 to 80). Defaults to 2.
        seed (int): Seed; the same seed gives identical files. Defaults to 0.
        splits (Sequence[str]): Split names; each gets an image folder and
            ``annotations/instances_{split}.json``. Defaults to
            ('train2017', 'val2017').
        quality (int): JPEG quality. Defaults to 90.

    Returns:
        str: ``root``.
    """
    coco_class_names(num_classes)  # checks the range
    w, h = image_size
    if min(w, h) < 32:
        raise ValueError(f'image_size {image_size}: both sides must be at '
                         f'least 32 pixels')
    categories = [dict(c, supercategory='shape') for c in COCO_CATEGORIES]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Objects sit in distinct cells of a grid, so they never overlap and every
    # polygon is the object's visible region.
    cols, rows = (3, 2) if w >= h else (2, 3)
    cell_w, cell_h = w / cols, h / rows
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for split_idx, split in enumerate(splits):
        rng = np.random.RandomState(seed * 1000 + split_idx)
        os.makedirs(osp.join(root, split), exist_ok=True)
        images: List[dict] = []
        annotations: List[dict] = []
        for img_id in range(1, num_images + 1):
            file_name = f'{img_id:012d}.jpg'
            img = _stripes(rng, rng.uniform(0, np.pi), yy, xx)
            # Lower the background's contrast so objects stand out.
            img = 0.5 * img + 0.5 * img.mean((0, 1), keepdims=True)
            num_objects = rng.randint(1, 4)
            cells = rng.choice(cols * rows, num_objects, replace=False)
            for cell in cells:
                label = int(rng.randint(num_classes))
                shape = _SHAPES[label % len(_SHAPES)]
                cx = (cell % cols + 0.5) * cell_w + rng.uniform(-2, 2)
                cy = (cell // cols + 0.5) * cell_h + rng.uniform(-2, 2)
                # Rotated, a shape reaches at most sqrt(rx^2 + ry^2) < half
                # from its centre: it stays inside its cell.
                half = min(cell_w, cell_h) / 2 - 2
                rx = half * rng.uniform(0.45, 0.65)
                ry = half * rng.uniform(0.45, 0.65)
                angle = rng.uniform(-0.4, 0.4)
                pts = _shape_polygon(shape, cx, cy, rx, ry, angle)
                pts[:, 0] = np.clip(pts[:, 0], 0, w - 1)
                pts[:, 1] = np.clip(pts[:, 1], 0, h - 1)
                pts = np.round(pts, 2)
                mask = Image.new('L', (w, h), 0)
                ImageDraw.Draw(mask).polygon([tuple(p) for p in pts.tolist()],
                                             fill=255)
                inside = np.asarray(mask)[..., None] > 0
                img = np.where(inside, _class_texture(label, seed, yy, xx,
                                                      rng), img)
                x0, y0 = pts.min(0)
                x1, y1 = pts.max(0)
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=img_id,
                        category_id=COCO_CATEGORIES[label]['id'],
                        segmentation=[pts.reshape(-1).tolist()],
                        area=round(_polygon_area(pts), 2),
                        bbox=[
                            round(float(x0), 2),
                            round(float(y0), 2),
                            round(float(x1 - x0), 2),
                            round(float(y1 - y0), 2)
                        ],
                        iscrowd=0))
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
                osp.join(root, split, file_name), quality=quality)
            images.append(
                dict(id=img_id, file_name=file_name, width=w, height=h))
        coco = dict(
            info=dict(
                description='FastMIM synthetic COCO-format instances',
                version='1.0',
                year=2017),
            licenses=[],
            images=images,
            annotations=annotations,
            categories=categories)
        with open(
                osp.join(root, 'annotations', f'instances_{split}.json'),
                'w') as f:
            json.dump(coco, f)
    return root


def make_ade20k(root: str,
                num_images: int = 8,
                image_size: Tuple[int, int] = (128, 128),
                num_classes: int = 150,
                seed: int = 0,
                num_used_classes: int = 6,
                quality: int = 90) -> str:
    """Write an ADE20K-format (ADEChallengeData2016) semantic segmentation
    dataset.

    Layout::

        root/images/training/ADE_train_00000001.jpg ...
        root/images/validation/ADE_val_00000001.jpg ...
        root/annotations/training/ADE_train_00000001.png ...
        root/annotations/validation/ADE_val_00000001.png ...

    Label PNGs are single-channel uint8 as in ADE20K: 0 is "other" (ignored
    with ``reduce_zero_label=True``, as ADE20K is trained), classes are
    1..``num_classes``. Only the first ``num_used_classes`` class values
    occur: a two-region background (upper and lower), 1 to 3 shapes of other
    classes, and a band of "other" (0). Every class has its own texture.

    Args:
        root (str): Dataset root (the ``ADEChallengeData2016`` folder).
        num_images (int): Images per split. Defaults to 8.
        image_size (tuple): (width, height) of every image. Defaults to
            (128, 128).
        num_classes (int): Number of classes the label values may come from
            (ADE20K has 150). Defaults to 150.
        seed (int): Seed; the same seed gives identical files. Defaults to 0.
        num_used_classes (int): How many class values (1, 2, ...) are drawn;
            at most ``num_classes``. Defaults to 6.
        quality (int): JPEG quality. Defaults to 90.

    Returns:
        str: ``root``.
    """
    if not 1 <= num_classes <= 255:
        raise ValueError(f'num_classes must be in [1, 255] (uint8 labels, '
                         f'0 = other), got {num_classes}')
    used = np.arange(1, min(num_used_classes, num_classes) + 1)
    if len(used) < 1:
        raise ValueError('num_used_classes must be >= 1')
    w, h = image_size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    splits = (('training', 'ADE_train'), ('validation', 'ADE_val'))
    for split_idx, (split, prefix) in enumerate(splits):
        rng = np.random.RandomState(seed * 1000 + 17 + split_idx)
        img_dir = osp.join(root, 'images', split)
        ann_dir = osp.join(root, 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in range(1, num_images + 1):
            seg = np.zeros((h, w), np.uint8)
            # Background: an upper and a lower region, split by a slanted
            # line.
            upper, lower = rng.choice(used, 2, replace=len(used) < 2)
            slope = rng.uniform(-0.3, 0.3)
            horizon = rng.uniform(0.3, 0.7) * h + slope * (xx - w / 2)
            seg[:] = np.where(yy < horizon, upper, lower)
            # Objects of any used class, drawn over the background.
            for _ in range(rng.randint(1, 4)):
                label = int(rng.choice(used))
                shape = _SHAPES[rng.randint(len(_SHAPES))]
                r = min(w, h) * rng.uniform(0.1, 0.25)
                pts = _shape_polygon(shape, rng.uniform(r, w - r),
                                     rng.uniform(r, h - r), r,
                                     r * rng.uniform(0.7, 1.3),
                                     rng.uniform(0, np.pi))
                mask = Image.new('L', (w, h), 0)
                ImageDraw.Draw(mask).polygon([tuple(p) for p in pts.tolist()],
                                             fill=1)
                seg[np.asarray(mask) > 0] = label
            # A band of "other" (label 0) along one side.
            band = rng.randint(2, max(3, min(w, h) // 10))
            if rng.rand() < 0.5:
                seg[:, :band] = 0
            else:
                seg[-band:, :] = 0
            img = np.zeros((h, w, 3), np.float32)
            for label in np.unique(seg):
                region = (seg == label)[..., None]
                if label == 0:
                    tex = rng.uniform(0, 255, (h, w, 3))
                else:
                    tex = _class_texture(int(label), seed, yy, xx, rng)
                img = np.where(region, tex, img)
            name = f'{prefix}_{i:08d}'
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
                osp.join(img_dir, name + '.jpg'), quality=quality)
            Image.fromarray(seg).save(osp.join(ann_dir, name + '.png'))
    return root
