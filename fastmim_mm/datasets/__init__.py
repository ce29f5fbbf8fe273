from .samplers import PerSampleSeedDataset, PerSampleSeedSampler
from .transforms import *  # noqa: F401,F403

__all__ = ['PerSampleSeedDataset', 'PerSampleSeedSampler']
