"""DecodeRandomResizedCrop: same boxes as RandomResizedCrop, same pixels as
decoding in full, the fallbacks and the errors."""
import io
import itertools

import cv2
import numpy as np
import pytest
import simplejpeg
from benchmark_pipeline import psnr
from mmengine.dataset import Compose
from mmpretrain.datasets import LoadImageFromFile, RandomResizedCrop
from PIL import Image
from scipy.stats import ks_2samp
from synthetic_imagenet import photo_like_image

from fastmim_mm.datasets import BrokenImageError, SafeLoadImageFromFile
from fastmim_mm.datasets.transforms import DecodeRandomResizedCrop, decode_crop
from fastmim_mm.datasets.transforms.decode_crop import jpeg_header


def photo(width=500, height=375, seed=0, noise=4.0):
    return photo_like_image(seed, width, height, noise)


def save(img, path, **kwargs):
    kwargs.setdefault('quality', 90)
    img.save(path, **kwargs)
    return str(path)


@pytest.fixture(scope='module')
def jpegs(tmp_path_factory):
    folder = tmp_path_factory.mktemp('decode_crop')
    return {
        'baseline':
        save(photo(seed=1), folder / 'baseline.jpg'),
        # odd sizes: the reduced images are ceil(size / f)
        'odd':
        save(photo(501, 333, seed=2), folder / 'odd.jpg'),
        'progressive':
        save(photo(seed=3), folder / 'progressive.jpg', progressive=True),
        'no_subsampling':
        save(photo(seed=4), folder / 'no_subsampling.jpg', subsampling=0),
    }


def pil_reference(path, box, scale):
    """Full decode with PIL, crop the box, bicubic resize with PIL (BGR)."""
    top, left, crop_h, crop_w = box
    with Image.open(path) as img:
        img = img.convert('RGB')
        out = img.crop((left, top, left + crop_w, top + crop_h)).resize(
            (scale[1], scale[0]), Image.BICUBIC)
    return np.asarray(out)[..., ::-1]


def mmpretrain_boxes(h, w, n, **kwargs):
    crop = RandomResizedCrop(scale=32, **kwargs)
    dummy = np.broadcast_to(np.zeros((), np.uint8), (h, w, 3))
    return [tuple(map(int, crop.rand_crop_params(dummy))) for _ in range(n)]


def our_boxes(h, w, n, **kwargs):
    crop = DecodeRandomResizedCrop(scale=32, **kwargs)
    return [tuple(map(int, crop.sample_crop(h, w))) for _ in range(n)]


@pytest.mark.parametrize('h, w, kwargs', [
    (375, 500, {}),
    (375, 500, dict(crop_ratio_range=(0.2, 1.0))),
    (333, 501, dict(aspect_ratio_range=(0.5, 2.0))),
    (100, 1000, {}),
    (1000, 100, dict(crop_ratio_range=(0.2, 1.0))),
    (7, 5, {}),
    (375, 500, dict(max_attempts=0)),
    (375, 500, dict(max_attempts=3, crop_ratio_range=(0.9, 1.0))),
])
def test_same_seed_same_boxes_as_mmpretrain(h, w, kwargs):
    np.random.seed(123)
    expected = mmpretrain_boxes(h, w, 2000, **kwargs)
    after_expected = np.random.random()
    np.random.seed(123)
    assert our_boxes(h, w, 2000, **kwargs) == expected
    assert np.random.random() == after_expected  # same number of draws


def box_stats(boxes, h, w):
    boxes = np.array(boxes, np.float64)
    area = boxes[:, 2] * boxes[:, 3] / (h * w)
    log_ratio = np.log(boxes[:, 3] / boxes[:, 2])
    return area, log_ratio


@pytest.mark.parametrize(
    'h, w, kwargs',
    [
        (375, 500, dict(crop_ratio_range=(0.2, 1.0))),
        (100, 1000, {}),  # elongated: most draws fall back to a central crop
    ])
def test_box_distribution_ks(h, w, kwargs):
    n = 20000
    np.random.seed(0)
    ours = our_boxes(h, w, n, **kwargs)
    np.random.seed(1)  # independent draws
    theirs = mmpretrain_boxes(h, w, n, **kwargs)
    for a, b in zip(box_stats(ours, h, w), box_stats(theirs, h, w)):
        assert ks_2samp(a, b).pvalue > 0.01
    if w / h > 4 / 3:
        fallback = (0, (w - round(h * 4 / 3)) // 2, h, round(h * 4 / 3))
        ours_fb = ours.count(fallback) / n
        theirs_fb = theirs.count(fallback) / n
        assert ours_fb > 0.3
        assert abs(ours_fb - theirs_fb) < 0.02


@pytest.mark.parametrize('name', ['baseline', 'odd', 'progressive'])
def test_seeded_output_matches_full_decode(jpegs, name):
    path = jpegs[name]
    with Image.open(path) as img:
        width, height = img.size
    full_bgr = cv2.imread(path)
    used = set()
    for size in (128, 64, 32, 24):
        t = DecodeRandomResizedCrop(size, crop_ratio_range=(0.2, 1.0))
        for seed in range(6):
            np.random.seed(seed)
            results = t(dict(img_path=path))
            np.random.seed(seed)
            box = t.sample_crop(height, width)
            used.add(t.reduction_factor(*box[2:]))
            img = results['img']
            assert img.dtype == np.uint8 and img.shape == (size, size, 3)
            assert results['img_shape'] == (size, size)
            assert results['ori_shape'] == (height, width)
            reference = pil_reference(path, box, t.scale)
            assert psnr(img, reference) >= 30
            # OpenCV's cubic resize (no antialiasing) of the full decode,
            # MMPretrain's cv2 backend, drifts from PIL's antialiased one
            # where a crop shrinks; the reduced decode (low-passed by the
            # DCT scaling, then warped bilinearly) comes closer to PIL.
            top, left, crop_h, crop_w = box
            cv2_full = cv2.resize(
                full_bgr[top:top + crop_h, left:left + crop_w], (size, size),
                interpolation=cv2.INTER_CUBIC)
            margin = 1.0 if t.reduction_factor(crop_h, crop_w) > 1 else 0.0
            assert psnr(img, reference) >= psnr(cv2_full, reference) + margin
    assert used == {1, 2, 4, 8}


@pytest.mark.parametrize('factor, size', [(1, 100), (2, 100), (4, 60),
                                          (8, 30)])
@pytest.mark.parametrize('name', ['baseline', 'odd', 'no_subsampling'])
def test_boxes_at_edges_and_odd_offsets(jpegs, name, factor, size):
    path = jpegs[name]
    with Image.open(path) as img:
        width, height = img.size
    side = min(size * factor + 13, height)
    boxes = [
        (0, 0, side, side),
        (height - side, width - side, side, side),  # partial last blocks
        (3, 5, side, side + 7),
        (height - side - 1, 1, side, side),
        (8, 16, size * factor, size * factor),  # on the reduced pixel grid
    ]
    t = DecodeRandomResizedCrop(size)
    for box in boxes:
        t.sample_crop = lambda h, w, box=box: box
        assert t.reduction_factor(*box[2:]) == factor
        img = t(dict(img_path=path))['img']
        assert img.shape == (size, size, 3)
        assert psnr(img, pil_reference(path, box, t.scale)) >= 30


def test_no_reduction_is_bitwise_mmpretrain_cv2(jpegs):
    """At full resolution the output is LoadImageFromFile +
    RandomResizedCrop(backend='cv2') exactly, random state included."""
    ours = DecodeRandomResizedCrop(200, crop_ratio_range=(0.2, 1.0))
    load = LoadImageFromFile()
    crop = RandomResizedCrop(
        200, crop_ratio_range=(0.2, 1.0), interpolation='bicubic')
    for seed in range(5):
        np.random.seed(seed)
        expected = crop(load(dict(img_path=jpegs['baseline'])))['img']
        after = np.random.random()
        np.random.seed(seed)
        assert np.array_equal(
            ours(dict(img_path=jpegs['baseline']))['img'], expected)
        assert np.random.random() == after


def test_nearest_samples_the_exact_box_of_the_reduced_image(jpegs):
    """interpolation='nearest' on a reduced decode takes, for each output
    pixel, the reduced pixel under its centre: box (37, 51, 301, 333) at
    1/2 spans columns [25.5, 192) and rows [18.5, 169) there."""
    path = jpegs['baseline']
    t = DecodeRandomResizedCrop(128, interpolation='nearest')
    box = (37, 51, 301, 333)
    t.sample_crop = lambda h, w: box
    assert t.reduction_factor(*box[2:]) == 2
    out = t(dict(img_path=path))['img']
    reduced = simplejpeg.decode_jpeg(
        open(path, 'rb').read(), 'BGR', min_height=188, min_width=250)
    assert reduced.shape == (188, 250, 3)
    centres = np.arange(128) + 0.5
    rows = np.floor(37 / 2 + centres * 301 / 2 / 128).astype(int)
    cols = np.floor(51 / 2 + centres * 333 / 2 / 128).astype(int)
    expected = reduced[rows][:, cols]
    # OpenCV's fixed-point coordinates may round a centre that falls within
    # 1/1024 pixel of a pixel edge the other way.
    assert np.mean(np.all(out == expected, axis=2)) > 0.99


def fallback_expected(path, seed, size):
    np.random.seed(seed)
    img = SafeLoadImageFromFile()(dict(img_path=path))
    return RandomResizedCrop(
        size, interpolation='bicubic', backend='cv2')(img)['img']


@pytest.mark.parametrize('kind', ['png', 'cmyk_jpeg', 'rgba_png', 'gray_png'])
def test_fallback_equals_safe_load_then_crop(tmp_path, kind):
    base = photo(200, 150, seed=5)
    path = {
        'png': lambda: save(base, tmp_path / 'a.png'),
        'cmyk_jpeg': lambda: save(base.convert('CMYK'), tmp_path / 'c.jpg'),
        'rgba_png': lambda: save(base.convert('RGBA'), tmp_path / 'r.png'),
        'gray_png': lambda: save(base.convert('L'), tmp_path / 'g.png'),
    }[kind]()
    if kind == 'cmyk_jpeg':
        assert jpeg_header(open(path, 'rb').read())[2] == 'CMYK'
    t = DecodeRandomResizedCrop(48)
    np.random.seed(7)
    results = t(dict(img_path=path))
    assert results['img'].shape == (48, 48, 3)
    assert results['ori_shape'] == (150, 200)
    assert np.array_equal(results['img'], fallback_expected(path, 7, 48))


def test_grayscale_jpeg_three_channels(tmp_path):
    path = save(photo(seed=6).convert('L'), tmp_path / 'gray.jpg')
    assert jpeg_header(open(path, 'rb').read())[2] == 'Gray'
    t = DecodeRandomResizedCrop(32, crop_ratio_range=(0.5, 1.0))
    for seed in range(3):
        np.random.seed(seed)
        img = t(dict(img_path=path))['img']
        np.random.seed(seed)
        box = t.sample_crop(375, 500)
        assert t.reduction_factor(*box[2:]) > 1
        assert img.shape == (32, 32, 3)
        assert np.array_equal(img[..., 0], img[..., 2])
        assert psnr(img, pil_reference(path, box, t.scale)) >= 30


def test_cmyk_jpeg_colours(tmp_path):
    path = save(
        Image.new('CMYK', (300, 200), (0, 255, 255, 0)),
        tmp_path / 'red.jpg',
        quality=100)
    img = DecodeRandomResizedCrop(64)(dict(img_path=path))['img']
    assert img.shape == (64, 64, 3)
    assert np.abs(img.astype(int) - (0, 0, 255)).max() <= 3  # BGR red


def test_padding_and_junk_after_end_of_image(tmp_path, jpegs):
    data = open(jpegs['baseline'], 'rb').read()
    t = DecodeRandomResizedCrop(200)
    np.random.seed(0)
    expected = t(dict(img_path=jpegs['baseline']))['img']
    for suffix in (b'\x00' * 100, b'appended by some camera'):
        path = tmp_path / 'suffixed.jpg'
        path.write_bytes(data + suffix)
        np.random.seed(0)
        img = t(dict(img_path=str(path)))['img']
        assert psnr(img, expected) > 40


@pytest.mark.parametrize('case', [
    'truncated', 'truncated_progressive', 'cut_before_end', 'cut_in_header',
    'empty', 'text', 'missing'
])
def test_broken_files_raise_naming_the_file(tmp_path, jpegs, case):
    data = open(jpegs['baseline'], 'rb').read()
    path = tmp_path / f'{case}.jpg'
    if case == 'truncated':
        path.write_bytes(data[:len(data) // 2])
    elif case == 'truncated_progressive':
        data = open(jpegs['progressive'], 'rb').read()
        path.write_bytes(data[:len(data) // 2])
    elif case == 'cut_before_end':  # only the end-of-image marker missing
        path.write_bytes(data[:-2])
    elif case == 'cut_in_header':
        path.write_bytes(data[:300])
    elif case == 'empty':
        path.write_bytes(b'')
    elif case == 'text':
        path.write_text('not pixels\n')
    with pytest.raises(BrokenImageError, match=str(path)) as error:
        DecodeRandomResizedCrop(64)(dict(img_path=str(path)))
    if case.startswith(('truncated', 'cut_before')):
        # Neither decoder yields a partly grey image without an error.
        assert 'image file is truncated' in str(error.value)


def test_scale_can_be_changed(jpegs):
    t = DecodeRandomResizedCrop(64, crop_ratio_range=(0.2, 1.0))
    assert t.scale == (64, 64)
    assert t(dict(img_path=jpegs['baseline']))['img'].shape == (64, 64, 3)
    t.scale = (96, 96)  # as ProgressiveResolutionHook does
    assert t(dict(img_path=jpegs['baseline']))['img'].shape == (96, 96, 3)
    t.scale = (40, 56)  # (h, w), like RandomResizedCrop
    assert t(dict(img_path=jpegs['baseline']))['img'].shape == (40, 56, 3)
    t.scale = 160
    assert t.scale == (160, 160)
    assert t(dict(img_path=jpegs['baseline']))['img'].shape == (160, 160, 3)
    with pytest.raises(ValueError):
        t.scale = (0, 10)
    assert 'scale=(160, 160)' in repr(t)


def test_in_mmpretrain_pipeline(jpegs):
    pipeline = Compose([
        dict(
            type='DecodeRandomResizedCrop',
            scale=128,
            crop_ratio_range=(0.2, 1.0)),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackInputs'),
    ])
    for name in ('baseline', 'odd'):
        out = pipeline(dict(img_path=jpegs[name]))
        assert tuple(out['inputs'].shape) == (3, 128, 128)
        assert out['data_samples'].ori_shape == Image.open(
            jpegs[name]).size[::-1]


def test_jpegs_take_the_reduced_decode(jpegs, tmp_path, monkeypatch):
    """JPEGs are decoded by TurboJPEG from their header's size: never by
    the full-decode fallback (PIL), which sees only what TurboJPEG
    refuses."""
    for name, path in jpegs.items():
        with Image.open(path) as img:
            assert jpeg_header(open(
                path,
                'rb').read()) == (img.size[1], img.size[0], 'YCbCr',
                                  '444' if name == 'no_subsampling' else '420')
    buf = io.BytesIO()
    Image.new('RGB', (4, 4)).save(buf, format='PNG')
    assert jpeg_header(buf.getvalue()) is None
    assert jpeg_header(b'\xff\xd8\xff\xe0\x00') is None

    paths = list(jpegs.values()) + [
        save(photo(seed=6).convert('L'), tmp_path / 'gray.jpg'),
        save(photo(seed=7), tmp_path / 'rgb.jpg', keep_rgb=True),
    ]
    padded = tmp_path / 'padded.jpg'
    padded.write_bytes(open(jpegs['odd'], 'rb').read() + b'\x00' * 64)
    paths.append(str(padded))
    monkeypatch.setattr(
        decode_crop, 'decode_bgr',
        lambda data, filename: pytest.fail(f'{filename} fully decoded'))
    t = DecodeRandomResizedCrop(128, crop_ratio_range=(0.2, 1.0))
    factors = set()
    for size, seed, path in itertools.product((128, 32), range(8), paths):
        t.scale = size
        np.random.seed(seed)
        img = t(dict(img_path=path))['img']
        np.random.seed(seed)
        with Image.open(path) as full:
            box = t.sample_crop(full.size[1], full.size[0])
        factors.add(t.reduction_factor(*box[2:]))
        assert psnr(img, pil_reference(path, box, t.scale)) >= 30
    assert factors == {1, 2, 4, 8}


def test_unknown_interpolation_is_named():
    with pytest.raises(ValueError) as err:
        DecodeRandomResizedCrop(64, interpolation='bicubicc')
    assert str(err.value) == (
        "DecodeRandomResizedCrop: interpolation='bicubicc' is not one of "
        'nearest, bilinear, bicubic, area, lanczos.')
