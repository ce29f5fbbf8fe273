import io
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get
from mmengine.logging import print_log
from mmpretrain.registry import TRANSFORMS
from PIL import Image, UnidentifiedImageError


class BrokenImageError(ValueError):
    """An image file that cannot be decoded."""


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB (alpha dropped, 16-bit scaled down)."""
    if img.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
        # 16-bit (or 32-bit integer) grey: scale the full range to 8 bits.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith('I;16') or arr.max() > 255 \
            else 255.0
        img = Image.fromarray(
            np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    elif img.mode == 'F':
        img = Image.fromarray(
            np.clip(np.asarray(img), 0, 255).astype(np.uint8))
    if img.mode in ('RGBA', 'LA') or (img.mode == 'P'
                                      and 'transparency' in img.info):
        img = img.convert('RGBA').convert('RGB')
    return img.convert('RGB') if img.mode != 'RGB' else img


def read_image_bytes(filename: str) -> bytes:
    """The file's bytes, or BrokenImageError if unreadable or empty.

    Local paths are read directly (MMEngine's backend lookup costs about as
    much as resizing a crop); URIs such as ``s3://`` go through MMEngine.
    """
    try:
        if '://' in str(filename):
            data = get(filename)
        else:
            with open(filename, 'rb') as f:
                data = f.read()
    except OSError as e:
        raise BrokenImageError(f'cannot read image {filename}: {e}') from e
    if not data:
        raise BrokenImageError(f'image file {filename} is empty (0 bytes)')
    return data


def decode_bgr(data: bytes, filename: str) -> np.ndarray:
    """Decode any image PIL reads to H x W x 3 uint8 BGR, or raise
    BrokenImageError naming the file (truncated data included)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # raises on truncated data
            rgb = _to_rgb(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise BrokenImageError(
            f'cannot decode image {filename} ({len(data)} bytes): {e}') from e
    return np.ascontiguousarray(np.asarray(rgb)[..., ::-1])


class ImageLoadingTransform(BaseTransform):
    """Base of the transforms that read an image file.

    Subclasses implement :meth:`load`. A :class:`BrokenImageError` stops the
    run, or with ``skip_broken=True`` makes the transform return ``None``
    (MMEngine datasets then draw another sample) and is logged with a
    running count.

    Args:
        skip_broken (bool): Skip broken files instead of raising.
            Defaults to False.
    """

    def __init__(self, skip_broken: bool = False) -> None:
        self.skip_broken = skip_broken
        self.num_skipped = 0

    def load(self, results: dict) -> dict:
        raise NotImplementedError

    def transform(self, results: dict) -> Optional[dict]:
        try:
            return self.load(results)
        except BrokenImageError as e:
            if not self.skip_broken:
                raise BrokenImageError(
                    f'{e}. Remove or replace the file, or set '
                    f'skip_broken=True on {type(self).__name__} in the '
                    f'pipeline to skip such files.') from e
            self.num_skipped += 1
            print_log(
                f'skipped broken image ({self.num_skipped} so far in this '
                f'process): {e}',
                logger='current',
                level=30)
            return None


@TRANSFORMS.register_module()
class SafeLoadImageFromFile(ImageLoadingTransform):
    """Load an image as 3-channel 8-bit BGR, or fail loudly.

    A drop-in for ``LoadImageFromFile`` (same ``img``, ``img_shape`` and
    ``ori_shape`` keys, BGR order) for datasets gathered from the wild:
    grayscale, CMYK, palette, RGBA and 16-bit images are converted to RGB;
    empty, truncated, corrupt or non-image files raise an error naming the
    file instead of yielding a silently wrong sample (OpenCV, for one,
    decodes a truncated JPEG into a half-grey image without an error).

    Args:
        skip_broken (bool): Instead of raising, return ``None`` for a broken
            file so the dataset draws another sample, and log each skip with
            a running count. Defaults to False.
    """

    def load(self, results: dict) -> dict:
        filename = results['img_path']
        img = decode_bgr(read_image_bytes(filename), filename)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(skip_broken={self.skip_broken})'
