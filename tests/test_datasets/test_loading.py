"""Bad and unusual images, built on disk."""
import io

import numpy as np
import pytest
from mmengine.dataset import Compose
from mmpretrain.datasets import CustomDataset
from PIL import Image

from fastmim_mm.datasets import BrokenImageError, SafeLoadImageFromFile
from fastmim_mm.datasets.transforms import loading

PIPELINE = [
    dict(
        type='RandomResizedCrop',
        scale=64,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]


def _jpeg_bytes(img, **kwargs):
    buf = io.BytesIO()
    img.save(buf, format='JPEG', **kwargs)
    return buf.getvalue()


def write_unusual(folder):
    """Valid images a crawl brings, with the BGR value expected at (0, 0)."""
    cases = {}
    Image.new('L', (40, 30), 100).save(folder / 'gray.jpg', quality=100)
    cases['gray.jpg'] = (100, 100, 100)
    Image.new('CMYK', (40, 30), (0, 0, 0, 0)).save(
        folder / 'cmyk.jpg', quality=100)
    cases['cmyk.jpg'] = (255, 255, 255)
    Image.new('RGBA', (40, 30), (10, 20, 200, 0)).save(folder / 'rgba.png')
    cases['rgba.png'] = (200, 20, 10)
    Image.fromarray(np.full((30, 40), 32896, np.uint16)).save(
        folder / 'deep.png')  # 16-bit grey, about half the range
    cases['deep.png'] = (128, 128, 128)
    Image.new('P', (40, 30), 3).save(folder / 'palette.png')
    cases['palette.png'] = None
    Image.new('RGB', (8, 8), (1, 2, 3)).save(folder / 'tiny.png')
    cases['tiny.png'] = (3, 2, 1)
    Image.new('RGB', (600, 6), (50, 60, 70)).save(folder / 'wide.png')
    cases['wide.png'] = (70, 60, 50)
    Image.new('RGB', (5, 500), (50, 60, 70)).save(folder / 'tall.png')
    cases['tall.png'] = (70, 60, 50)
    return cases


def write_broken(folder):
    (folder / 'empty.jpg').write_bytes(b'')
    noise = np.random.RandomState(0).randint(0, 255, (64, 64, 3), np.uint8)
    full = _jpeg_bytes(Image.fromarray(noise))
    (folder / 'truncated.jpg').write_bytes(full[:len(full) // 2])
    (folder / 'corrupt.jpg').write_bytes(full[:20] + bytes(range(256)) * 8)
    (folder / 'notes.jpg').write_text('these are not pixels\n')
    return ['empty.jpg', 'truncated.jpg', 'corrupt.jpg', 'notes.jpg']


def test_unusual_images_load_as_rgb(tmp_path):
    load = SafeLoadImageFromFile()
    pipeline = Compose(PIPELINE)
    for name, bgr in write_unusual(tmp_path).items():
        out = load(dict(img_path=str(tmp_path / name)))
        img = out['img']
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert out['img_shape'] == img.shape[:2]
        if bgr is not None:
            np.testing.assert_allclose(img[0, 0], bgr, atol=2)
        packed = pipeline(out)
        assert tuple(packed['inputs'].shape) == (3, 64, 64), name


@pytest.mark.parametrize(
    'name', ['empty.jpg', 'truncated.jpg', 'corrupt.jpg', 'notes.jpg'])
def test_broken_images_raise_naming_the_file(tmp_path, name):
    write_broken(tmp_path)
    with pytest.raises(BrokenImageError, match=name) as error:
        SafeLoadImageFromFile()(dict(img_path=str(tmp_path / name)))
    assert str(error.value).endswith(
        'set skip_broken=True on SafeLoadImageFromFile in the pipeline to '
        'skip such files.')


def test_opt_in_skipping_draws_other_samples(tmp_path, monkeypatch):
    good = write_unusual(tmp_path)
    bad = write_broken(tmp_path)
    names = sorted(good) + bad
    (tmp_path / 'ann.txt').write_text(''.join(f'{n} 0\n' for n in names))
    dataset = CustomDataset(
        data_root=str(tmp_path),
        ann_file='ann.txt',
        pipeline=[dict(type='SafeLoadImageFromFile', skip_broken=True)] +
        PIPELINE)
    loader = dataset.pipeline.transforms[0]
    logged = []
    monkeypatch.setattr(loading, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    samples = [dataset[i] for i in range(len(dataset))]
    assert loader.num_skipped >= len(bad)
    for sample in samples:
        assert tuple(sample['inputs'].shape) == (3, 64, 64)
        path = sample['data_samples'].img_path
        assert path.split('/')[-1] in good
    assert len(logged) == loader.num_skipped
    assert logged[0].startswith('skipped broken image (1 so far in this '
                                'process): ')
    assert any('truncated.jpg' in m for m in logged)
    # Skipping is on: nothing advises turning it on.
    assert not any('skip_broken' in m for m in logged)

    strict = CustomDataset(
        data_root=str(tmp_path),
        ann_file='ann.txt',
        pipeline=[dict(type='SafeLoadImageFromFile')] + PIPELINE)
    with pytest.raises(BrokenImageError, match='empty.jpg'):
        strict[names.index('empty.jpg')]
