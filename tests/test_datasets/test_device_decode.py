"""Decoding on the model's device (DeviceDecodeRandomResizedCrop in the
workers + DeviceDecodeDataPreprocessor), run here with device 'cpu': the
same boxes and flips as the CPU pipeline for a seed, and images close to
its output."""
import copy
import io
import json
import math

import numpy as np
import pytest
import torch
from benchmark_pipeline import psnr
from mmcv.transforms import RandomFlip
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.runner import Runner
from mmpretrain.registry import MODELS
from synthetic_imagenet import photo_like_image

from fastmim_mm.datasets import BrokenImageError
from fastmim_mm.datasets.transforms import (DecodeRandomResizedCrop,
                                            DeviceDecodeRandomResizedCrop)
from fastmim_mm.datasets.transforms.decode_crop import jpeg_header
from fastmim_mm.datasets.transforms.device_decode import nvjpeg_decodable
from ..conftest import CONFIG_DIR, runner_config

GPU_DECODE = CONFIG_DIR / 'fastmim' / (
    'fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px_gpu-decode.py')


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """JPEGs of several sizes and kinds, one grey JPEG and one PNG."""
    folder = tmp_path_factory.mktemp('device_decode')
    paths = []
    for i, (w, h) in enumerate([(500, 375), (375, 500), (333, 251), (640, 480),
                                (160, 120)]):
        path = folder / f'{i}.jpg'
        photo_like_image(i, w, h, 4.0).save(
            path, quality=90, progressive=(i == 1))
        paths.append(str(path))
    grey = folder / 'grey.jpg'
    photo_like_image(7, 300, 200).convert('L').save(grey, quality=90)
    png = folder / 'image.png'
    photo_like_image(8, 200, 150).save(png)
    return paths + [str(grey), str(png)]


def pipelines(scale=96):
    crop = dict(
        scale=scale, crop_ratio_range=(0.2, 1.0), interpolation='bicubic')
    cpu = Compose([
        dict(type='DecodeRandomResizedCrop', **crop),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackInputs'),
    ])
    cfg = Config.fromfile(str(GPU_DECODE))
    device = Compose(cfg.train_dataloader.dataset.dataset.pipeline)
    device.transforms[0].scale = scale
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    return cpu, device, preprocessor


def test_config_switches_it_on():
    cfg = Config.fromfile(str(GPU_DECODE))
    assert cfg.model.data_preprocessor.type == 'DeviceDecodeDataPreprocessor'
    assert cfg.model.data_preprocessor.to_rgb is True  # from the base
    crop = cfg.train_dataloader.dataset.dataset.pipeline[0]
    assert crop.type == 'DeviceDecodeRandomResizedCrop'
    assert (crop.scale, crop.crop_ratio_range) == (128, (0.2, 1.0))
    assert cfg.train_dataloader.collate_fn.type == 'pseudo_collate'
    assert cfg.train_dataloader.batch_size == 512


def test_same_boxes_flips_and_images_as_cpu_path(files):
    cpu, device, preprocessor = pipelines()
    for seed in range(4):
        np.random.seed(seed)
        want = [cpu(dict(img_path=f)) for f in files]
        np.random.seed(seed)
        got = [device(dict(img_path=f)) for f in files]
        batch = pseudo_collate(got)
        # Workers hand over bytes for the JPEGs, finished crops otherwise
        # (the PNG).
        dims = [x.dim() for x in batch['inputs']]
        assert dims == [1] * 6 + [3]
        # The preprocessor's input before normalisation: BGR, 0..255.
        images = preprocessor.decode_crop(batch['inputs'],
                                          batch['data_samples'])
        assert images.shape == (7, 3, 96, 96)
        for w, g, image, path in zip(want, got, images, files):
            ws, gs = w['data_samples'], g['data_samples']
            assert gs.flip == ws.flip, path
            assert gs.ori_shape == ws.ori_shape
            assert tuple(gs.img_shape) == (96, 96)
            value = psnr(image, w['inputs'].float())
            assert value >= (60 if path.endswith('.png') else 30), (path,
                                                                    value)


def test_boxes_are_decode_random_resized_crops(files):
    """The box of each sample is DecodeRandomResizedCrop's for the same
    random state, and the flip RandomFlip's."""
    transform = DeviceDecodeRandomResizedCrop(96, crop_ratio_range=(0.2, 1.))
    np.random.seed(3)
    got = [transform(dict(img_path=f)) for f in files[:6] * 20]
    flip = RandomFlip(prob=0.5, direction='horizontal')
    np.random.seed(3)
    want = []
    for g in got:
        box = DecodeRandomResizedCrop(
            96, crop_ratio_range=(0.2, 1.)).sample_crop(*g['ori_shape'])
        want.append((box, flip._choose_direction() is not None))
    assert [(g['crop_box'], g['flip']) for g in got] == want
    flips = sum(w[1] for w in want)
    assert 35 <= flips <= 85  # of 120, p = 0.5
    areas = [b[2] * b[3] for b, _ in want]
    assert len(set(areas)) > 100


def jpeg_kinds():
    """Byte strings of JPEGs nvJPEG decodes (True) and of files it does
    not decode whole (False)."""

    def encode(img, **kwargs):
        buf = io.BytesIO()
        img.save(buf, format='JPEG', quality=90, **kwargs)
        return buf.getvalue()

    def with_frame(data, marker=None, precision=None):
        sof = data.index(b'\xff\xc0')  # the quantisation tables hold no FF
        data = bytearray(data)
        if marker is not None:
            data[sof + 1] = marker
        if precision is not None:
            data[sof + 4] = precision
        return bytes(data)

    def with_comment(data, text):  # a COM segment right after SOI
        return (data[:2] + b'\xff\xfe' + (len(text) + 2).to_bytes(2, 'big') +
                text + data[2:])

    img = photo_like_image(0, 120, 90, 4.0)
    plain = encode(img)
    sof = plain.index(b'\xff\xc0')
    fake_sof0 = b'\xff\xc0\x00\x11\x08\x00\x5a\x00\x78\x03'
    good = {
        'baseline': plain,
        'progressive': encode(img, progressive=True),
        'grey': encode(img.convert('L')),
        '4:4:4': encode(img, subsampling=0),
        'zero padding': plain + b'\x00' * 16,
        'fill byte before the frame': plain[:sof] + b'\xff' + plain[sof:],
        'comment': with_comment(plain, b'any text'),
    }
    bad = {
        '12-bit':
        with_frame(plain, precision=12),
        'lossless':
        with_frame(plain, marker=0xC3),
        'arithmetic':
        with_frame(plain, marker=0xC9),
        # the frame is found by walking the segments, not by searching
        'arithmetic, SOF0 bytes in a comment':
        with_comment(with_frame(plain, marker=0xC9), fake_sof0),
        'CMYK':
        encode(img.convert('CMYK')),
        'RGB colour space':
        encode(img, keep_rgb=True),
        'truncated':
        plain[:len(plain) // 2],
        'end-of-image marker cut off':
        plain[:-2],
        'junk after the end':
        plain + b'appended by some camera',
        'cut in the header':
        plain[:100],
        'not a JPEG':
        b'not pixels',
    }
    return good, bad


def test_only_files_nvjpeg_decodes_whole_go_to_the_device():
    good, bad = jpeg_kinds()
    for name, data in list(good.items()) + list(bad.items()):
        assert nvjpeg_decodable(data, jpeg_header(data)) == (name in good), \
            name
    # simplejpeg reads these headers as a baseline one's: only the frame
    # tells them apart.
    for name in ('12-bit', 'lossless', 'arithmetic'):
        assert jpeg_header(bad[name]) == jpeg_header(good['baseline'])


def test_refused_files_are_cropped_by_the_worker(tmp_path):
    """Files nvJPEG would not decode whole become the CPU pipeline's crops
    (same seed, same crop and flip), or a BrokenImageError naming them."""
    cpu, device, _ = pipelines()
    device = device.transforms[0]
    _, bad = jpeg_kinds()
    cropped = 0
    for i, (name, data) in enumerate(bad.items()):
        path = tmp_path / f'{i}.jpg'
        path.write_bytes(data)
        np.random.seed(i)
        try:
            want = cpu(dict(img_path=str(path)))
        except BrokenImageError:
            with pytest.raises(BrokenImageError, match=str(path)):
                device(dict(img_path=str(path)))
            continue
        np.random.seed(i)
        got = device(dict(img_path=str(path)))
        assert got['crop_box'] is None, name
        assert got['flip'] == want['data_samples'].flip
        assert np.array_equal(got['img'], want['inputs'].permute(1, 2,
                                                                 0).numpy())
        cropped += 1
    # CMYK, RGB colour space and junk after the end at least (PIL also
    # decodes the relabelled arithmetic-coded ones, into noise).
    assert cropped >= 3


def test_normalised_batch_and_sizes_follow_scale(files):
    _, device, preprocessor = pipelines(scale=64)
    batch = pseudo_collate([device(dict(img_path=f)) for f in files])
    out = preprocessor(batch, training=True)
    assert out['inputs'].shape == (7, 3, 64, 64)
    assert out['inputs'].dtype == torch.float32
    assert -3 < out['inputs'].mean() < 3
    assert len(out['data_samples']) == 7
    # A stacked batch (default_collate) passes through unchanged in size.
    stacked = dict(
        inputs=torch.zeros(2, 3, 32, 32, dtype=torch.uint8),
        data_samples=out['data_samples'][:2])
    assert preprocessor(stacked)['inputs'].shape == (2, 3, 32, 32)


def test_bad_interpolation_is_one_clear_error():
    with pytest.raises(ValueError, match='interpolation'):
        MODELS.build(
            dict(type='DeviceDecodeDataPreprocessor', interpolation='lanczos'))


def test_trains_and_follows_progressive_resolution(image_folder, tmp_path):
    """Pre-training with the gpu-decode config's pipeline, collate and
    preprocessor on the CPU; ProgressiveResolutionHook resizes its crops."""
    gpu = Config.fromfile(str(GPU_DECODE))
    cfg = runner_config(tmp_path, image_folder, input_size=32, max_epochs=2)
    cfg.model.data_preprocessor.type = 'DeviceDecodeDataPreprocessor'
    cfg.train_dataloader.collate_fn = gpu.train_dataloader.collate_fn
    pipeline = copy.deepcopy(gpu.train_dataloader.dataset.dataset.pipeline)
    pipeline[0].scale = 32
    cfg.train_dataloader.dataset.dataset.pipeline = pipeline
    cfg.custom_hooks = [
        dict(
            type='ProgressiveResolutionHook',
            phases=[(0, 32, 4, 1), (1, 64, 8, 1)])
    ]
    cfg.auto_scale_lr = dict()
    runner = Runner.from_cfg(cfg)
    preprocessor = runner.model.data_preprocessor
    shapes = []
    forward = preprocessor.forward

    def record(data, training=False):
        out = forward(data, training)
        shapes.append(tuple(out['inputs'].shape))
        return out

    preprocessor.forward = record
    runner.train()
    # 16 images: 4 batches of 4 at 32 px, then 2 of 8 at 64 px.
    assert shapes == [(4, 3, 32, 32)] * 4 + [(8, 3, 64, 64)] * 2
    log = (tmp_path / runner.timestamp / 'vis_data' / 'scalars.json')
    losses = [
        json.loads(line)['loss'] for line in log.read_text().splitlines()
    ]
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses)
