from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import RandomFlip
from mmpretrain.registry import TRANSFORMS

from ...compat import private_api
from .decode_crop import DecodeRandomResizedCrop, jpeg_header
from .loading import read_image_bytes

# What nvJPEG decodes (its documented support): 8-bit Huffman-coded
# baseline (SOF0) and progressive (SOF2) frames of grey or YCbCr images
# with these chroma subsamplings (simplejpeg's names).
_NVJPEG_FRAMES = ((0xC0, 8), (0xC2, 8))
_NVJPEG_SUBSAMPLING = ('444', '422', '420', '440', '411', 'Gray')
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _frame(data: bytes) -> Optional[Tuple[int, int]]:
    """``(start-of-frame marker, sample precision)`` of a JPEG whose header
    simplejpeg has read (so its segments up to the frame are well formed),
    or None. simplejpeg's header is the same for baseline, progressive,
    12-bit, lossless and arithmetic-coded frames."""
    pos = 2
    try:
        while True:
            while data[pos + 1] == 0xFF:  # fill bytes before a marker
                pos += 1
            marker = data[pos + 1]
            if marker in _SOF_MARKERS:
                return marker, data[pos + 4]
            if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length field
                pos += 2
            else:
                pos += 2 + int.from_bytes(data[pos + 2:pos + 4], 'big')
    except IndexError:
        return None


def nvjpeg_decodable(data: bytes, header: Optional[tuple]) -> bool:
    """Whether nvJPEG (``torchvision.io.decode_jpeg`` on CUDA) decodes
    ``data`` whole: a JPEG of a kind it supports that is not truncated.

    A batch with one file nvJPEG refuses fails as a whole, without naming
    the file, so such files are decoded by the loader workers instead.
    Truncation needs no decoding to see: entropy-coded data escapes 0xFF as
    ``FF 00``, so a file cut inside its image data cannot end with the
    end-of-image marker ``FF D9`` (zero padding after it is allowed).

    Args:
        data (bytes): The file content.
        header (tuple | None): :func:`jpeg_header` of ``data``.
    """
    return (header is not None and header[2] in ('Gray', 'YCbCr')
            and header[3] in _NVJPEG_SUBSAMPLING
            and _frame(data) in _NVJPEG_FRAMES
            and data.rstrip(b'\x00').endswith(b'\xff\xd9'))


@TRANSFORMS.register_module()
class DeviceDecodeRandomResizedCrop(DecodeRandomResizedCrop):
    """Loader-worker half of decoding on the model's device (nvJPEG on a
    GPU): read the JPEG's bytes, draw the crop box and the flip, and leave
    decoding, cropping, resizing and flipping to
    :class:`DeviceDecodeDataPreprocessor`.

    The box is drawn from the size in the JPEG header by
    :meth:`DecodeRandomResizedCrop.sample_crop` (MMPretrain's
    ``RandomResizedCrop`` sampling) and the flip by an mmcv ``RandomFlip``,
    in the order ``DecodeRandomResizedCrop`` followed by ``RandomFlip``
    draws them, so a seed gives the boxes and flips of that CPU pipeline.
    Files nvJPEG does not decode whole (PNGs; CMYK, 12-bit, lossless or
    arithmetic-coded JPEGs; truncated files, ...; see
    :func:`nvjpeg_decodable`) are decoded, cropped and flipped here on the
    CPU, as ``DecodeRandomResizedCrop`` + ``RandomFlip`` would.

    Use with ``PackInputs(meta_keys=(..., 'crop_box'))``,
    ``collate_fn=dict(type='pseudo_collate')`` (the byte strings differ in
    length) and the model's ``data_preprocessor`` of type
    ``DeviceDecodeDataPreprocessor``.

    **Required Keys:**

    - img_path

    **Added Keys:**

    - img (the file's bytes as a 1-D uint8 array, or the finished crop)
    - img_shape (the output size ``scale``)
    - ori_shape
    - crop_box (``(top, left, height, width)``, or None when cropped here)
    - flip
    - flip_direction

    Args:
        scale (sequence | int): Output size, as for
            ``DecodeRandomResizedCrop``.
        flip_prob (float): Probability of a horizontal flip.
            Defaults to 0.5.
        **kwargs: ``DecodeRandomResizedCrop``'s other arguments
            (crop_ratio_range, aspect_ratio_range, max_attempts,
            interpolation of the images cropped here, skip_broken).
    """

    def __init__(self,
                 scale: Union[Sequence[int], int],
                 flip_prob: float = 0.5,
                 **kwargs) -> None:
        super().__init__(scale, **kwargs)
        self.flip = RandomFlip(prob=float(flip_prob), direction='horizontal')

    def load(self, results: dict) -> dict:
        """Read ``results['img_path']``; draw the box and the flip.

        Args:
            results (dict): The result dict, with ``img_path``.

        Returns:
            dict: The result dict (see Added Keys).
        """
        data = read_image_bytes(results['img_path'])
        header = jpeg_header(data)
        if not nvjpeg_decodable(data, header):
            results = super().load(results)
            results['crop_box'] = None
            return self.flip(results)
        height, width = header[:2]
        results['crop_box'] = self.sample_crop(height, width)
        direction = private_api.flip_direction(self.flip)
        results['flip'] = direction is not None
        results['flip_direction'] = direction
        results['img'] = np.frombuffer(bytearray(data), np.uint8)
        results['img_shape'] = self.scale
        results['ori_shape'] = (height, width)
        return results

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] + f', flip_prob={self.flip.prob})')
