from typing import Sequence, Union

import numpy as np
from mmcv.transforms import RandomFlip
from mmpretrain.registry import TRANSFORMS

from .decode_crop import (DecodeRandomResizedCrop, is_plain_jpeg,
                          parse_jpeg_header)
from .loading import read_image_bytes


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
    Images that are not plain 8-bit JPEGs (PNGs, CMYK, lossless, truncated
    files, ...) are decoded, cropped and flipped here on the CPU, as
    ``DecodeRandomResizedCrop`` + ``RandomFlip`` would.

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
        header = parse_jpeg_header(data)
        if not is_plain_jpeg(data, header):
            results = super().load(results)
            results['crop_box'] = None
            return self.flip(results)
        height, width = header[2:4]
        results['crop_box'] = self.sample_crop(height, width)
        direction = self.flip._choose_direction()
        results['flip'] = direction is not None
        results['flip_direction'] = direction
        results['img'] = np.frombuffer(bytearray(data), np.uint8)
        results['img_shape'] = self.scale
        results['ori_shape'] = (height, width)
        return results

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] +
                f', flip_prob={self.flip.prob})')
