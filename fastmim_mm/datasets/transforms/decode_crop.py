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
    sub-pixel precision, is resampled to ``scale`` by one bilinear affine
    warp (nearest for ``interpolation='nearest'``): the DCT scaling has
    already low-passed the image, and bilinear then comes closer to PIL's
    antialiased resize of the fully decoded box than bicubic. Where no
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
        interpolation (str): OpenCV's resampling method where the image is
            decoded in full, one of 'nearest', 'bilinear', 'bicubic', 'area'
            and 'lanczos'. Defaults to 'bicubic'.
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
        if factor == 1:
            crop = img[top:top + crop_h, left:left + crop_w]
            return cv2.resize(
                crop, (out_w, out_h),
                interpolation=cv2_interp_codes[self.interpolation])

        # In the reduced image pixel i covers full-resolution pixels
        # [i * f, (i + 1) * f), the last one too (libjpeg's reduced size is
        # ceil(size / f)), so the box is [left / f, (left + crop_w) / f)
        # there, usually off the pixel grid: output pixel j samples
        # x = left / f + (j + 0.5) * sx - 0.5 with sx = crop_w / f / out_w.
        # One affine warp resamples it exactly (rounding the box would
        # shift the crop by up to half an output pixel). Bilinear, because
        # the DCT scaling has already low-passed the image: it comes closer
        # to the antialiased resize of the full image than bicubic does.
        sx, sy = crop_w / factor / out_w, crop_h / factor / out_h
        inverse_map = np.array([[sx, 0, left / factor + 0.5 * sx - 0.5],
                                [0, sy, top / factor + 0.5 * sy - 0.5]])
        flags = cv2.INTER_NEAREST if self.interpolation == 'nearest' \
            else cv2.INTER_LINEAR
        return cv2.warpAffine(
            img,
            inverse_map, (out_w, out_h),
            flags=flags | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE)

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
