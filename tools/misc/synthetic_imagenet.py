"""Small image datasets generated on disk in ImageNet's folder layout.

They stand in for ImageNet where nothing can be downloaded (the demo, the
tests): every class is a family of oriented textures and shapes, so HOG has
structure to learn, and the same seed always gives the same bytes.
"""
import os
import os.path as osp
from typing import Tuple

import numpy as np
from PIL import Image, ImageDraw


def _stripes(rng: np.random.RandomState, theta: float, yy: np.ndarray,
             xx: np.ndarray) -> np.ndarray:
    """H x W x 3 stripes at angle theta between two colours that differ
    strongly in every channel, so every channel has a clear gradient."""
    freq = rng.uniform(0.06, 0.2)
    wave = np.sin((xx * np.cos(theta) + yy * np.sin(theta)) * freq * 2 *
                  np.pi + rng.uniform(0, 2 * np.pi))
    a = rng.uniform(0, 255, 3)
    b = np.where(a > 127, a - rng.uniform(90, 127, 3),
                 a + rng.uniform(90, 127, 3))
    t = (wave[..., None] + 1) / 2
    return a * t + b * (1 - t)


def _draw_image(rng: np.random.RandomState, label: int, num_classes: int,
                size: Tuple[int, int]) -> Image.Image:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Background: stripes at the class's orientation.
    theta = np.pi * label / num_classes + rng.uniform(-0.1, 0.1)
    img = _stripes(rng, theta, yy, xx)
    # Foreground: a few shapes filled with stripes of another orientation.
    for _ in range(rng.randint(1, 4)):
        x0, y0 = rng.uniform(0, w * 0.7), rng.uniform(0, h * 0.7)
        s = rng.uniform(0.2, 0.45) * min(w, h)
        box = [x0, y0, x0 + s, y0 + s * rng.uniform(0.6, 1.4)]
        mask = Image.new('L', size, 0)
        draw = ImageDraw.Draw(mask)
        kind = rng.randint(0, 3)
        if kind == 0:
            draw.ellipse(box, fill=255)
        elif kind == 1:
            draw.rectangle(box, fill=255)
        else:
            draw.polygon([(box[0], box[3]), ((box[0] + box[2]) / 2, box[1]),
                          (box[2], box[3])],
                         fill=255)
        inside = np.asarray(mask)[..., None] > 0
        other = theta + np.pi / 2 + rng.uniform(-0.3, 0.3)
        img = np.where(inside, _stripes(rng, other, yy, xx), img)
    return Image.fromarray(img.astype(np.uint8))


def photo_like_image(seed: int,
                     width: int = 500,
                     height: int = 375,
                     noise: float = 10.0) -> Image.Image:
    """A deterministic stand-in for an ImageNet photo: smooth colour
    gradients, sharp-edged shapes and sensor-like noise. Saved as JPEG at
    quality 90 it is about as large as an ImageNet photo (50-100 KB at
    500x375), so decoding costs what it costs on real data.

    Args:
        seed (int): Seed; the same seed gives the same image.
        width (int): Image width. Defaults to 500.
        height (int): Image height. Defaults to 375.
        noise (float): Std of the Gaussian noise. Defaults to 10.
    """
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    for c in range(3):
        fx, fy, phase = rng.uniform(-3, 3, 3)
        img[...,
            c] = 128 + 90 * np.sin(fx * xx / width + fy * yy / height + phase)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(25):
        x0, y0 = rng.randint(0, width), rng.randint(0, height)
        x1, y1 = x0 + rng.randint(10, 150), y0 + rng.randint(10, 150)
        colour = tuple(int(v) for v in rng.randint(0, 256, 3))
        shape = draw.rectangle if rng.rand() < 0.5 else draw.ellipse
        shape([x0, y0, x1, y1], fill=colour)
    arr = np.asarray(pil, np.float32) + rng.normal(0, noise,
                                                   (height, width, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def make_imagenet_folder(root: str,
                         num_classes: int = 8,
                         images_per_class: int = 64,
                         image_size: Tuple[int, int] = (160, 160),
                         split: str = 'train',
                         seed: int = 0,
                         quality: int = 90) -> str:
    """Write ``{root}/{split}/{wnid}/{wnid}_{i}.JPEG`` and
    ``{root}/meta/{split}.txt`` (``path label`` lines), as ImageNet has them.

    Args:
        root (str): Dataset root.
        num_classes (int): Number of class folders.
        images_per_class (int): Images per class.
        image_size (tuple): (width, height) of every image.
        split (str): Split folder name. Defaults to 'train'.
        seed (int): Seed; the same seed gives identical files.
        quality (int): JPEG quality.

    Returns:
        str: ``root``.
    """
    rng = np.random.RandomState(seed)
    lines = []
    for label in range(num_classes):
        wnid = f'n{label:08d}'
        os.makedirs(osp.join(root, split, wnid), exist_ok=True)
        for i in range(images_per_class):
            rel = f'{wnid}/{wnid}_{i}.JPEG'
            img = _draw_image(rng, label, num_classes, image_size)
            img.save(osp.join(root, split, rel), quality=quality)
            lines.append(f'{rel} {label}\n')
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
        f.writelines(lines)
    return root
