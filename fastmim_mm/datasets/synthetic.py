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


def _draw_image(rng: np.random.RandomState, label: int, num_classes: int,
                size: Tuple[int, int]) -> Image.Image:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Background: stripes at the class's orientation, random frequency/phase.
    theta = np.pi * label / num_classes + rng.uniform(-0.1, 0.1)
    freq = rng.uniform(0.05, 0.25)
    wave = np.sin((xx * np.cos(theta) + yy * np.sin(theta)) * freq * 2 * np.pi
                  + rng.uniform(0, 2 * np.pi))
    colour_a = rng.uniform(0, 255, 3)
    colour_b = rng.uniform(0, 255, 3)
    t = (wave[..., None] + 1) / 2
    img = Image.fromarray((colour_a * t + colour_b * (1 - t)).astype(np.uint8))
    # Foreground: a few shapes; the class decides which kind dominates.
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(2, 6)):
        x0, y0 = rng.uniform(0, w * 0.8), rng.uniform(0, h * 0.8)
        s = rng.uniform(0.1, 0.35) * min(w, h)
        fill = tuple(int(c) for c in rng.uniform(0, 255, 3))
        box = [x0, y0, x0 + s, y0 + s * rng.uniform(0.5, 1.5)]
        if (label + rng.randint(0, 3)) % 3 == 0:
            draw.ellipse(box, fill=fill)
        elif (label + rng.randint(0, 3)) % 3 == 1:
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(box[0], box[3]), ((box[0] + box[2]) / 2, box[1]),
                          (box[2], box[3])], fill=fill)
    return img


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
