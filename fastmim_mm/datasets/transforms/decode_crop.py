import math
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import simplejpeg
from mmcv.image.geometric import cv2_interp_codes
from mmpretrain.datasets.transforms import RandomResizedCrop
from mmpretrain.registry import TRANSFORMS

from .loading import ImageLoadingTransform, decode_bgr, read_image_bytes

# JPEG colour spaces (simplejpeg's names) decoded by TurboJPEG; CMYK and
# YCCK files take PIL's conversion, as in SafeLoadImageFromFile.
_TURBOJPEG_COLOURS = ('Gray', 'YCbCr', 'RGB')


def jpeg_header(data: bytes) -> Optional[Tuple[int, int, str, str]]:
    """Read a JPEG's header with simplejpeg, without decoding the image.

    Args:
        data (bytes): The file content.

    Returns:
        tuple | None: ``(height, width, colour_space, subsampling)`` as
        ``simplejpeg.decode_jpeg_header`` gives them (colour spaces 'Gray',
        'YCbCr', 'RGB', 'CMYK', 'YCCK'; subsampling '444', '420', ...,
        'Gray'), or None when ``data`` is not a JPEG or is cut off inside
        its metadata.
    """
    try:
        return simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None


def _shift_kernel(shift: float) -> np.ndarray:
    """Weights of pixels -1 .. 2 for the value at ``shift`` (in [0, 1)),
    by OpenCV's cubic convolution (a = -0.75)."""
    a = -0.75
    weights = []
    for x in (1 + shift, shift, 1 - shift, 2 - shift):
        if x <= 1:
            weights.append(((a + 2) * x - (a + 3)) * x * x + 1)
        else:
            weights.append(((a * x - 5 * a) * x + 8 * a) * x - 4 * a)
    return np.array(weights, np.float32)


@TRANSFORMS.register_module()
class DecodeRandomResizedCrop(ImageLoadingTransform, RandomResizedCrop):
    """Load an image, crop a random box and resize it, decoding JPEGs at a
    reduced resolution where the crop allows.

    A fused, faster equivalent of ``SafeLoadImageFromFile`` (or
    ``LoadImageFromFile``) followed by MMPretrain's ``RandomResizedCrop``,
    whose arguments, checks and box sampling it inherits: the box is drawn
    by ``rand_crop_params`` from the size in the JPEG header (the same calls
    on numpy's global random state, so a given seed gives the same boxes),
    then the JPEG is decoded by TurboJPEG (simplejpeg) with DCT scaling at
    the largest factor of 1/2, 1/4 or 1/8 that keeps the box at least
    ``scale`` on both sides, and the box, mapped into the reduced image with
    sub-pixel precision, is resampled to ``scale`` with OpenCV. Where no
    reduction applies the output is that of ``LoadImageFromFile`` +
    ``RandomResizedCrop(backend='cv2')`` bit for bit (for images without an
    EXIF orientation, which is ignored here as by ``SafeLoadImageFromFile``).

    Other images (PNG and other formats; CMYK JPEGs; JPEGs that TurboJPEG's
    strict decoding refuses, as truncated, 12-bit or lossless ones) are
    fully decoded like ``SafeLoadImageFromFile`` does (grayscale, CMYK,
    palette, RGBA and 16-bit converted to RGB) and then cropped the same
    way. Empty, truncated, corrupt or non-image files raise
    :class:`BrokenImageError` naming the file.

    **Required Keys:**

    - img_path

    **Added Keys:**

    - img
    - img_shape
    - ori_shape

    Args:
        scale (sequence | int): Output size of the crop, ``(h, w)`` or an
            int for a square. The ``scale`` attribute may be reassigned
            after construction (e.g. by ``ProgressiveResolutionHook``).
        crop_ratio_range (tuple): Range of the area of the crop relative to
            the image's. Defaults to (0.08, 1.0).
        aspect_ratio_range (tuple): Range of the aspect ratio (w / h) of the
            crop, sampled log-uniformly. Defaults to (3. / 4., 4. / 3.).
        max_attempts (int): Attempts at a box that fits in the image before
            falling back to a central crop. Defaults to 10.
        interpolation (str): OpenCV's resampling method, one of 'nearest',
            'bilinear', 'bicubic', 'area' and 'lanczos'.
            Defaults to 'bicubic'.
        skip_broken (bool): Return ``None`` for a broken file (the dataset
            draws another sample) and log it, instead of raising.
            Defaults to False.
    """

    def __init__(self,
                 scale: Union[Sequence[int], int],
                 crop_ratio_range: Tuple[float, float] = (0.08, 1.0),
                 aspect_ratio_range: Tuple[float, float] = (3. / 4., 4. / 3.),
                 max_attempts: int = 10,
                 interpolation: str = 'bicubic',
                 skip_broken: bool = False) -> None:
        # RandomResizedCrop checks it with a bare assert.
        if interpolation not in cv2_interp_codes:
            raise ValueError(
                f'DecodeRandomResizedCrop: interpolation={interpolation!r} '
                f'is not one of {", ".join(cv2_interp_codes)}.')
        ImageLoadingTransform.__init__(self, skip_broken)
        RandomResizedCrop.__init__(
            self,
            scale,
            crop_ratio_range=crop_ratio_range,
            aspect_ratio_range=aspect_ratio_range,
            max_attempts=max_attempts,
            interpolation=interpolation,
            backend='cv2')

    @property
    def scale(self) -> Tuple[int, int]:
        """tuple: The output size ``(h, w)``."""
        return self._scale

    @scale.setter
    def scale(self, value: Union[Sequence[int], int]) -> None:
        if isinstance(value, Sequence):
            if len(value) != 2:
                raise ValueError(
                    f'scale must be an int or a pair, got {value}')
            value = (int(value[0]), int(value[1]))
        else:
            value = (int(value), int(value))
        if min(value) <= 0:
            raise ValueError(f'scale must be positive, got {value}')
        self._scale = value

    def sample_crop(self, height: int,
                    width: int) -> Tuple[int, int, int, int]:
        """Draw a crop box for an image of the given size with
        ``rand_crop_params``, which reads only the image's shape.

        Args:
            height (int): Image height.
            width (int): Image width.

        Returns:
            tuple: ``(top, left, crop_h, crop_w)``.
        """
        return self.rand_crop_params(np.empty((height, width, 0), np.uint8))

    def reduction_factor(self, crop_h: int, crop_w: int) -> int:
        """The largest DCT down-scale factor (1, 2, 4 or 8) at which a crop
        of the given size still has at least ``scale`` pixels on both
        sides."""
        out_h, out_w = self.scale
        for factor in (8, 4, 2):
            if crop_h >= out_h * factor and crop_w >= out_w * factor:
                return factor
        return 1

    def _resize(self, img: np.ndarray, box: Tuple[int, int, int, int],
                factor: int) -> np.ndarray:
        """Resample ``box`` (in full-resolution pixels) of ``img`` (decoded
        at 1 / ``factor``) to ``scale``."""
        top, left, crop_h, crop_w = box
        out_h, out_w = self.scale
        interp = cv2_interp_codes[self.interpolation]
        if factor == 1:
            crop = img[top:top + crop_h, left:left + crop_w]
            return cv2.resize(crop, (out_w, out_h), interpolation=interp)

        # In the reduced image pixel i covers full-resolution pixels
        # [i * f, (i + 1) * f), the last one too (libjpeg's reduced size is
        # ceil(size / f)), so the box is [left / f, (left + crop_w) / f)
        # there, usually off the pixel grid. Rounding it would shift the
        # crop by up to half an output pixel, so the box is resampled
        # exactly: the fractional part of its offset by a cubic shift of
        # the pixels it touches, its size by resizing with an exact scale.
        # (cv2.warpAffine would do both at once, at 2 to 4 times the cost.)
        x0, y0 = left / factor, top / factor
        box_w, box_h = crop_w / factor, crop_h / factor
        ix0, iy0 = int(x0), int(y0)
        ix1 = min(math.ceil(x0 + box_w), img.shape[1])
        iy1 = min(math.ceil(y0 + box_h), img.shape[0])
        crop = img[iy0:iy1, ix0:ix1]
        if interp != cv2.INTER_NEAREST:  # which has no sub-pixel precision
            if x0 > ix0:
                crop = cv2.filter2D(
                    crop,
                    -1,
                    _shift_kernel(x0 - ix0)[None],
                    anchor=(1, 0),
                    borderType=cv2.BORDER_REPLICATE)
            if y0 > iy0:
                crop = cv2.filter2D(
                    crop,
                    -1,
                    _shift_kernel(y0 - iy0)[:, None],
                    anchor=(0, 1),
                    borderType=cv2.BORDER_REPLICATE)
        # With dsize (0, 0) OpenCV maps output pixel j to input
        # (j + 0.5) / fx - 0.5, with fx as given, and returns
        # round(crop size * fx) >= scale pixels.
        out = cv2.resize(
            crop, (0, 0),
            fx=out_w / box_w,
            fy=out_h / box_h,
            interpolation=interp)
        return out[:out_h, :out_w]

    def _decode_reduced(self, data: bytes, height: int, width: int,
                        factor: int) -> Optional[np.ndarray]:
        """Decode at 1 / ``factor`` (given the minimum size, TurboJPEG picks
        that DCT scaling), or None where strict decoding fails (truncated or
        corrupt data, a frame type it does not decode)."""
        expected = (-(-height // factor), -(-width // factor))
        try:
            img = simplejpeg.decode_jpeg(
                data, 'BGR', min_height=expected[0], min_width=expected[1])
        except ValueError:
            return None
        return img if img.shape[:2] == expected else None

    def load(self, results: dict) -> dict:
        """Load, crop and resize the image at ``results['img_path']``.

        Args:
            results (dict): The result dict, with ``img_path``.

        Returns:
            dict: The result dict with ``img`` (BGR, ``scale`` in size),
            ``img_shape`` and ``ori_shape`` (the size of the whole image).
        """
        filename = results['img_path']
        data = read_image_bytes(filename)
        header = jpeg_header(data)
        img = box = None
        if header is not None and header[2] in _TURBOJPEG_COLOURS:
            height, width = header[:2]
            box = self.sample_crop(height, width)
            factor = self.reduction_factor(*box[2:])
            img = self._decode_reduced(data, height, width, factor)
        if img is None:
            factor = 1
            img = decode_bgr(data, filename)
            # The box is drawn again only where TurboJPEG refused a JPEG
            # whose header disagrees with what PIL decodes.
            if box is None or img.shape[:2] != (height, width):
                height, width = img.shape[:2]
                box = self.sample_crop(height, width)
        out = self._resize(img, box, factor)
        results['img'] = out
        results['img_shape'] = out.shape[:2]
        results['ori_shape'] = (height, width)
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', skip_broken={self.skip_broken})'
