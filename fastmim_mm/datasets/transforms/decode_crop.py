import math
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmpretrain.registry import TRANSFORMS

try:
    import simplejpeg
except ImportError:  # optional: OpenCV decodes then
    simplejpeg = None

from .loading import ImageLoadingTransform, decode_bgr, read_image_bytes

_CV2_INTERP = {
    'nearest': cv2.INTER_NEAREST,
    'bilinear': cv2.INTER_LINEAR,
    'bicubic': cv2.INTER_CUBIC,
    'area': cv2.INTER_AREA,
    'lanczos': cv2.INTER_LANCZOS4,
}

# EXIF orientation is ignored on both paths, as PIL (and so
# SafeLoadImageFromFile and torchvision's ImageFolder) ignores it: the crop
# box is sampled on the stored pixel grid, which the header describes.
_IMREAD_REDUCED = {
    factor: flag | cv2.IMREAD_IGNORE_ORIENTATION
    for factor, flag in ((1, cv2.IMREAD_COLOR),
                         (2, cv2.IMREAD_REDUCED_COLOR_2),
                         (4, cv2.IMREAD_REDUCED_COLOR_4),
                         (8, cv2.IMREAD_REDUCED_COLOR_8))
}

# Start-of-frame markers of Huffman-coded baseline, extended and progressive
# JPEGs, which OpenCV's libjpeg-turbo decodes with DCT scaling. Other frame
# types (lossless, arithmetic, hierarchical) take the full-decode path.
_FAST_SOF = (0xC0, 0xC1, 0xC2)
_ANY_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}


def parse_jpeg_header(
        data: bytes) -> Optional[Tuple[int, int, int, int, int]]:
    """Read the frame header of a JPEG byte string without decoding it.

    Args:
        data (bytes): The file content.

    Returns:
        tuple | None: ``(sof_marker, precision, height, width, components)``
        of the first frame, or None when ``data`` is not a JPEG or its
        markers cannot be walked up to a frame header (e.g. a file cut off
        inside its metadata).
    """
    if data[:2] != b'\xff\xd8':
        return None
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        while pos < end and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= end:
            return None
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE:
            continue
        if marker in (0xD9, 0xDA) or pos + 2 > end:
            return None  # image data or end before any frame header
        length = (data[pos] << 8) | data[pos + 1]
        if length < 2 or pos + length > end:
            return None
        if marker in _ANY_SOF:
            if length < 8:
                return None
            precision = data[pos + 2]
            height = (data[pos + 3] << 8) | data[pos + 4]
            width = (data[pos + 5] << 8) | data[pos + 6]
            return marker, precision, height, width, data[pos + 7]
        pos += length
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


def _ends_with_eoi(data: bytes) -> bool:
    """Whether the bytes end with the JPEG end-of-image marker.

    Entropy-coded data escapes 0xFF as ``FF 00``, so a file cut off anywhere
    in the image data cannot end with ``FF D9``; zero padding after the
    marker is allowed.
    """
    if data.endswith(b'\xff\xd9'):
        return True
    return data[-1:] == b'\x00' and data.rstrip(b'\x00').endswith(b'\xff\xd9')


def is_plain_jpeg(data: bytes, header: Optional[tuple]) -> bool:
    """Whether ``data`` is a complete 8-bit Huffman-coded (baseline,
    extended or progressive) grey or YCbCr JPEG, the kind that
    libjpeg-turbo (with DCT scaling) and nvJPEG decode.

    Args:
        data (bytes): The file content.
        header (tuple | None): :func:`parse_jpeg_header` of ``data``.
    """
    return (header is not None and header[0] in _FAST_SOF
            and header[1] == 8 and header[4] in (1, 3)
            and min(header[2:4]) > 0 and _ends_with_eoi(data))


@TRANSFORMS.register_module()
class DecodeRandomResizedCrop(ImageLoadingTransform):
    """Load an image, crop a random box and resize it, decoding JPEGs at a
    reduced resolution where the crop allows.

    A fused, faster equivalent of ``SafeLoadImageFromFile`` (or
    ``LoadImageFromFile``) followed by ``RandomResizedCrop``: the crop box is
    drawn from the size in the JPEG header with exactly the sampling of
    MMPretrain's ``RandomResizedCrop`` (the same calls on numpy's global
    random state, so a given seed gives the same boxes), then the JPEG is
    decoded with libjpeg's DCT scaling at the largest factor of 1/2, 1/4 or
    1/8 that keeps the box at least ``scale`` on both sides, and the box,
    mapped into the reduced image with sub-pixel precision, is resampled to
    ``scale``. Where no reduction applies the output is that of
    ``LoadImageFromFile`` + ``RandomResizedCrop(backend='cv2')`` bit for bit
    (for images without an EXIF orientation, which is ignored here as by
    ``SafeLoadImageFromFile``).

    Other images (PNG and other formats; CMYK, 12-bit, lossless or
    arithmetic-coded JPEGs; JPEGs that do not end with the end-of-image
    marker, as truncated ones) are fully decoded like
    ``SafeLoadImageFromFile`` does (grayscale, CMYK, palette, RGBA and 16-bit
    converted to RGB) and then cropped the same way. Empty, truncated,
    corrupt or non-image files raise :class:`BrokenImageError` naming the
    file.

    **Required Keys:**

    - img_path

    **Added Keys:**

    - img
    - img_shape
    - ori_shape

    Args:
        scale (sequence | int): Output size of the crop. An int gives a
            square crop; a sequence is read like ``RandomResizedCrop`` reads
            it, as ``(h, w)``. The ``scale`` attribute may be reassigned
            after construction (e.g. by ``ProgressiveResolutionHook``).
        crop_ratio_range (tuple): Range of the area of the crop relative to
            the image's. Defaults to (0.08, 1.0).
        aspect_ratio_range (tuple): Range of the aspect ratio (w / h) of the
            crop, sampled log-uniformly. Defaults to (3. / 4., 4. / 3.).
        max_attempts (int): Attempts at a box that fits in the image before
            falling back to a central crop. Defaults to 10.
        interpolation (str): Resampling method, one of 'nearest',
            'bilinear', 'bicubic', 'area' and 'lanczos' (OpenCV's).
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
        super().__init__(skip_broken)
        self.scale = scale
        if (crop_ratio_range[0] > crop_ratio_range[1]
                or aspect_ratio_range[0] > aspect_ratio_range[1]):
            raise ValueError(
                f'ranges must be (min, max), got crop_ratio_range '
                f'{crop_ratio_range} and aspect_ratio_range '
                f'{aspect_ratio_range}.')
        if not isinstance(max_attempts, int) or max_attempts < 0:
            raise ValueError(
                f'max_attempts must be a non-negative int, got {max_attempts}')
        if interpolation not in _CV2_INTERP:
            raise ValueError(f'interpolation must be one of '
                             f'{tuple(_CV2_INTERP)}, got {interpolation!r}')
        self.crop_ratio_range = tuple(crop_ratio_range)
        self.aspect_ratio_range = tuple(aspect_ratio_range)
        self.max_attempts = max_attempts
        self.interpolation = interpolation

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
        """Draw a crop box for an image of the given size.

        Args:
            height (int): Image height.
            width (int): Image width.

        Returns:
            tuple: ``(top, left, crop_h, crop_w)``.
        """
        image_area = height * width
        log_lo = math.log(self.aspect_ratio_range[0])
        log_hi = math.log(self.aspect_ratio_range[1])
        for _ in range(self.max_attempts):
            # Keep these draws and float operations in this order: they must
            # reproduce RandomResizedCrop's boxes for the same seed.
            area = np.random.uniform(*self.crop_ratio_range) * image_area
            ratio = math.exp(np.random.uniform(log_lo, log_hi))
            crop_w = int(round(math.sqrt(area * ratio)))
            crop_h = int(round(math.sqrt(area / ratio)))
            if 0 < crop_w <= width and 0 < crop_h <= height:
                top = np.random.randint(0, height - crop_h + 1)
                left = np.random.randint(0, width - crop_w + 1)
                return top, left, crop_h, crop_w

        # No attempt fitted: the largest central crop whose aspect ratio is
        # clamped into the range.
        image_ratio = float(width) / float(height)
        lo, hi = min(self.aspect_ratio_range), max(self.aspect_ratio_range)
        crop_h, crop_w = height, width
        if image_ratio < lo:
            crop_h = int(round(width / lo))
        elif image_ratio > hi:
            crop_w = int(round(height * hi))
        return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w

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
        interp = _CV2_INTERP[self.interpolation]
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
                    crop, -1, _shift_kernel(x0 - ix0)[None], anchor=(1, 0),
                    borderType=cv2.BORDER_REPLICATE)
            if y0 > iy0:
                crop = cv2.filter2D(
                    crop, -1, _shift_kernel(y0 - iy0)[:, None],
                    anchor=(0, 1), borderType=cv2.BORDER_REPLICATE)
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
        expected = (-(-height // factor), -(-width // factor))
        if simplejpeg is not None:
            # TurboJPEG directly: about 6% faster than OpenCV's decoder on
            # ImageNet-sized photos, same libjpeg-turbo arithmetic. Given
            # the minimum size, it picks the 1/factor DCT scaling.
            try:
                img = simplejpeg.decode_jpeg(
                    data, 'BGR', min_height=expected[0],
                    min_width=expected[1])
            except ValueError:
                return None
        else:
            img = cv2.imdecode(
                np.frombuffer(data, np.uint8), _IMREAD_REDUCED[factor])
        if img is None or img.shape[:2] != expected or img.ndim != 3:
            return None
        return img

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
        header = parse_jpeg_header(data)
        img = box = None
        if is_plain_jpeg(data, header):
            height, width = header[2:4]
            box = self.sample_crop(height, width)
            factor = self.reduction_factor(*box[2:])
            img = self._decode_reduced(data, height, width, factor)
        if img is None:
            factor = 1
            img = decode_bgr(data, filename)
            # The box is drawn again only where OpenCV refused a JPEG whose
            # header disagrees with what PIL decodes.
            if box is None or img.shape[:2] != (height, width):
                height, width = img.shape[:2]
                box = self.sample_crop(height, width)
        out = self._resize(img, box, factor)
        results['img'] = out
        results['img_shape'] = out.shape[:2]
        results['ori_shape'] = (height, width)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.scale}, '
                f'crop_ratio_range={self.crop_ratio_range}, '
                f'aspect_ratio_range='
                f'{tuple(round(r, 4) for r in self.aspect_ratio_range)}, '
                f'max_attempts={self.max_attempts}, '
                f'interpolation={self.interpolation}, '
                f'skip_broken={self.skip_broken})')
