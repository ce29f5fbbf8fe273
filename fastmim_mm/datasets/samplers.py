"""Random augmentations that depend on the sample, not on the worker.

Each data loader worker has random streams of its own, seeded when it
starts: what a sample gets depends on which worker draws it and on what
that worker drew before. A resumed run restarts persistent workers from
their first seeds, so it cannot repeat the interrupted run's crops. Here
each sample's draws come from streams seeded by ``(seed, epoch, index)``
instead: :class:`PerSampleSeedSampler` yields the seeds with the indices and
:class:`PerSampleSeedDataset` seeds the streams with them, both named in
the config.
"""
import copy
import random
from contextlib import contextmanager, nullcontext
from itertools import islice
from typing import Iterator, Optional, Sized

import numpy as np
import torch
from mmengine.dataset import DefaultSampler
from mmpretrain.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import get_worker_info


class SeededIndex(int):
    """A dataset index carrying the sampler's seed and epoch."""

    def __new__(cls, index: int, seed: int, epoch: int) -> 'SeededIndex':
        obj = super().__new__(cls, index)
        obj.seed, obj.epoch = seed, epoch
        return obj

    def __reduce__(self):
        return SeededIndex, (int(self), self.seed, self.epoch)


def seed_global_streams(seed: int, epoch: int, index: int) -> None:
    """Seed Python's, numpy's and torch's (CPU) global random streams from
    ``(seed, epoch, index)``, through numpy's ``SeedSequence``."""
    state = np.random.SeedSequence((seed, epoch, index)).generate_state(4)
    np.random.seed(state)
    random.seed(int.from_bytes(state.tobytes(), 'little'))
    torch.default_generator.manual_seed(int(state[:2].view(np.uint64)[0]))


@contextmanager
def _streams_kept():
    """Restore Python's, numpy's and torch's CPU streams on exit."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


@DATASETS.register_module()
class PerSampleSeedDataset:
    """A dataset whose samples draw their random augmentations from streams
    seeded by ``(seed, epoch, index)``.

    Given a :class:`SeededIndex` (what :class:`PerSampleSeedSampler`
    yields), it seeds Python's, numpy's and torch's (CPU) global streams
    from it, then loads the sample from the wrapped dataset. In a data
    loader worker the streams are left as the sample leaves them (a
    replacement for a skipped sample is then drawn from them too); in the
    main process (``num_workers=0``) they are restored afterwards, so
    loading data does not change the training process's draws. A plain
    index loads the sample on the streams as they are. Attributes it does
    not have (``pipeline``, ``data_root``, ...) are the wrapped dataset's.

    Args:
        dataset (dict | Dataset): The dataset, or its config.
    """

    seeds_each_sample = True

    def __init__(self, dataset) -> None:
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        self.dataset = dataset

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.dataset.metainfo)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):
        if name == 'dataset':  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index):
        if not isinstance(index, SeededIndex):
            return self.dataset[index]
        in_worker = get_worker_info() is not None
        with nullcontext() if in_worker else _streams_kept():
            seed_global_streams(index.seed, index.epoch, int(index))
            return self.dataset[int(index)]


@DATA_SAMPLERS.register_module()
class PerSampleSeedSampler(DefaultSampler):
    """``DefaultSampler`` whose samples draw their augmentations from
    streams seeded by ``(seed, epoch, index)``.

    It yields the indices of ``DefaultSampler`` (same order, same split
    across processes), each carrying the sampler's seed and the epoch, for
    a :class:`PerSampleSeedDataset`, which seeds Python's, numpy's and
    torch's global streams from them before the transforms run. A sample's
    crop and flip thus do not depend on the number of workers, on which
    worker loads it, or on whether workers are persistent; the seed is the
    same in every process, the epoch is set by ``DistSamplerSeedHook`` and
    restored on resume, so a resumed run repeats the uninterrupted run's
    augmentations.

    A run resumed from a checkpoint taken inside an epoch continues that
    epoch where it stopped: :meth:`resume_at` (called by
    ``ResumableCheckpointHook``) makes the sampler leave out the indices
    this process had already trained on in that epoch.

    Args:
        dataset (PerSampleSeedDataset): The dataset.
        shuffle (bool): Whether to shuffle the indices. Defaults to True.
        seed (int, optional): Seed of the order and of the augmentations,
            the same in every process. None draws one and shares it.
            Defaults to None.
        round_up (bool): Whether to pad the indices to a multiple of the
            number of processes. Defaults to True.
    """

    def __init__(self,
                 dataset: Sized,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 round_up: bool = True) -> None:
        super().__init__(dataset, shuffle, seed, round_up)
        # Seen through wrappers that forward attributes (MMEngine's
        # ``num_batch_per_epoch`` slice).
        if getattr(dataset, 'seeds_each_sample', False) is not True:
            raise TypeError(
                f'PerSampleSeedSampler needs its dataset wrapped in a '
                f'PerSampleSeedDataset, got {type(dataset).__name__}: set '
                f"the dataloader's dataset=dict(type='PerSampleSeedDataset'"
                f', dataset=...), or its sampler to DefaultSampler.')
        self._resumed = (None, 0)  # (epoch, indices left out in it)

    def resume_at(self, epoch: int, consumed: int) -> None:
        """Leave out, in epoch ``epoch``, the first ``consumed`` indices of
        this process's order for that epoch; other epochs are whole."""
        if not 0 <= consumed <= self.num_samples:
            raise ValueError(
                f'PerSampleSeedSampler.resume_at: {consumed} samples '
                f'consumed, but each process has {self.num_samples} per '
                f'epoch: the checkpoint was saved with another dataset.')
        self._resumed = (epoch, consumed)

    def _left_out(self) -> int:
        epoch, consumed = self._resumed
        return consumed if epoch == self.epoch else 0

    def __iter__(self) -> Iterator[SeededIndex]:
        for index in islice(super().__iter__(), self._left_out(), None):
            yield SeededIndex(index, self.seed, self.epoch)

    def __len__(self) -> int:
        return self.num_samples - self._left_out()
