"""FastMIM for OpenMMLab. Importing the package (what configs'
``custom_imports`` do) registers FastMIM's modules in MMPretrain's
registries and changes nothing else; the checks and stack fixes of the
toolkit's runs belong to :class:`~fastmim_mm.engine.FastMIMRunner`."""
from .utils import register_all_modules

__version__ = '0.1.0'

register_all_modules(init_default_scope=False)
