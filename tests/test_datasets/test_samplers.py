"""PerSampleSeedSampler and PerSampleSeedDataset: a sample's augmentation
is a function of (seed, epoch, index), whichever process or worker loads
it."""
import pickle
import random

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose, DefaultSampler
from mmengine.runner import Runner
from mmpretrain.datasets import RandomResizedCrop
from scipy.stats import ks_2samp

from fastmim_mm.datasets import PerSampleSeedSampler
from fastmim_mm.datasets.samplers import SeededIndex, seed_global_streams
from ..conftest import runner_config


def _epochs(cfg, num_workers, epochs=2):
    """Every batch of ``epochs`` epochs: (sample indices, images)."""
    loader = Runner.build_dataloader(
        dict(
            cfg.train_dataloader,
            num_workers=num_workers,
            persistent_workers=num_workers > 0),
        seed=3)
    loader.generator = torch.Generator()  # base seeds off the global stream
    batches = []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            batches.append(([s.sample_idx
                             for s in batch['data_samples']], batch['inputs']))
    return batches


def test_two_workers_give_the_batches_of_none(image_folder, tmp_path):
    cfg = runner_config(tmp_path, image_folder, input_size=32)
    assert cfg.train_dataloader.sampler.type == 'PerSampleSeedSampler'
    streams = (random.getstate(), np.random.get_state()[1].copy(),
               torch.get_rng_state())
    in_process = _epochs(cfg, num_workers=0)
    # Loading in the main process left its streams as they were.
    assert random.getstate() == streams[0]
    assert np.array_equal(np.random.get_state()[1], streams[1])
    assert torch.equal(torch.get_rng_state(), streams[2])

    workers = _epochs(cfg, num_workers=2)
    assert len(in_process) == len(workers) == 8  # 16 images, 4 a batch
    for (idx_a, img_a), (idx_b, img_b) in zip(in_process, workers):
        assert idx_a == idx_b and all(type(i) is int for i in idx_a)
        assert torch.equal(img_a, img_b)

    # Each epoch draws anew: the same image is cropped otherwise.
    crops = {}
    for epoch, batches in enumerate((in_process[:4], in_process[4:])):
        for indices, images in batches:
            for index, image in zip(indices, images):
                crops.setdefault(index, {})[epoch] = image
    assert sorted(crops) == list(range(16))
    assert all(not torch.equal(c[0], c[1]) for c in crops.values())


def test_order_of_default_sampler_and_seeds_travel(image_folder, tmp_path):
    cfg = runner_config(tmp_path, image_folder)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=3)
    dataset = loader.dataset
    sampler = PerSampleSeedSampler(dataset, seed=5)
    reference = DefaultSampler(dataset, seed=5)
    sampler.set_epoch(2)
    reference.set_epoch(2)
    indices = list(sampler)
    assert indices == list(reference)
    assert {(i.seed, i.epoch) for i in indices} == {(5, 2)}
    copy = pickle.loads(pickle.dumps(indices[3]))  # to a worker
    assert (int(copy), copy.seed, copy.epoch) == (indices[3], 5, 2)
    # The wrapped dataset is left as it was (no pipeline class swapped).
    assert type(dataset.dataset.pipeline) is Compose
    first = dataset[SeededIndex(indices[0], 5, 2)]['inputs']
    np.random.seed(0)
    assert torch.equal(dataset[SeededIndex(indices[0], 5, 2)]['inputs'], first)
    # A plain index draws from the streams as they are.
    assert not torch.equal(dataset[int(indices[0])]['inputs'], first)

    # Through MMEngine's num_batch_per_epoch slice, which forwards
    # attributes: a sample's crop is still that of its (seed, epoch, index).
    sliced = Runner.build_dataloader(
        dict(cfg.train_dataloader, num_batch_per_epoch=1), seed=3)
    batch = next(iter(sliced))
    for sample, image in zip(batch['data_samples'], batch['inputs']):
        expected = dataset[SeededIndex(sample.sample_idx, 3, 0)]['inputs']
        assert torch.equal(image, expected)

    with pytest.raises(
            TypeError,
            match='PerSampleSeedSampler needs its dataset wrapped in a '
            'PerSampleSeedDataset, got CustomDataset'):
        PerSampleSeedSampler(dataset.dataset)


def _box_stats(boxes, h, w):
    """Area fraction, log aspect ratio, top and left of (y, x, h, w)
    boxes."""
    y, x, bh, bw = np.array(boxes, np.float64).T
    return bh * bw / (h * w), np.log(bw / bh), y, x


@pytest.mark.parametrize('h, w', [(375, 500), (100, 1000)])
def test_box_distribution_of_random_resized_crop(h, w):
    """Streams seeded per (seed, epoch, index) draw MMPretrain's
    RandomResizedCrop boxes as one stream drawn in sequence does."""
    crop = RandomResizedCrop(scale=32, crop_ratio_range=(0.2, 1.0))
    image = np.broadcast_to(np.zeros((), np.uint8), (h, w, 3))
    n = 10000
    seeded = []
    for epoch in range(2):
        for index in range(n // 2):
            seed_global_streams(0, epoch, index)
            seeded.append(crop.rand_crop_params(image))
    np.random.seed(1)
    sequential = [crop.rand_crop_params(image) for _ in range(n)]
    for ours, theirs in zip(
            _box_stats(seeded, h, w), _box_stats(sequential, h, w)):
        assert ks_2samp(ours, theirs).pvalue > 0.01
