from .panel import denormalize, hog_to_image, make_panel

__all__ = ['denormalize', 'hog_to_image', 'make_panel']
