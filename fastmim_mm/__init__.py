"""FastMIM for OpenMMLab. Importing the package (what configs'
``custom_imports`` do) runs :func:`~fastmim_mm.utils.register_all_modules`
once: FastMIM's modules join MMPretrain's registries, checkpoint loads are
checked against the model, and the stack's compatibility fixes
(:mod:`fastmim_mm.compat`) are applied where needed."""
from .utils import register_all_modules

__version__ = '0.1.0'

register_all_modules(init_default_scope=False)
