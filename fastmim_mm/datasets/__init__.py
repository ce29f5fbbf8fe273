from .samplers import PerSampleSeedSampler
from .synthetic import make_imagenet_folder, photo_like_image
from .synthetic_downstream import make_ade20k, make_coco_instances
from .transforms import *  # noqa: F401,F403

__all__ = [
    'PerSampleSeedSampler', 'make_imagenet_folder', 'photo_like_image',
    'make_coco_instances', 'make_ade20k'
]
