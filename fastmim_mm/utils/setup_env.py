from mmpretrain.utils import register_all_modules as register_mmpretrain


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register FastMIM's modules in MMPretrain's registries (with
    MMPretrain's own); nothing else changes.

    ``import fastmim_mm`` calls it with ``init_default_scope=False``: a
    config's ``custom_imports`` can only import. What the toolkit's runs
    need of the stack is set up by the runner they are built with
    (:class:`~fastmim_mm.engine.FastMIMRunner`).

    Args:
        init_default_scope (bool): Whether to set the default scope to
            ``mmpretrain``, whose registries FastMIM's modules are in.
            Defaults to True.
    """
    register_mmpretrain(init_default_scope)
    import fastmim_mm.datasets  # noqa: F401
    import fastmim_mm.engine  # noqa: F401
    import fastmim_mm.evaluation  # noqa: F401
    import fastmim_mm.models  # noqa: F401
    import fastmim_mm.visualization  # noqa: F401
