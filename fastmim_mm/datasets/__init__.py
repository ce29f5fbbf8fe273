from .synthetic import make_imagenet_folder
from .transforms import *  # noqa: F401,F403

__all__ = ['make_imagenet_folder']
