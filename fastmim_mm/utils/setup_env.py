from mmpretrain.utils import register_all_modules as register_mmpretrain


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register FastMIM's modules in MMPretrain's registries and set up
    what they rely on; a second call does nothing more.

    Besides MMPretrain's ``register_all_modules``, it

    - routes every checkpoint MMEngine loads through the fit check of
      :mod:`fastmim_mm.engine.checkpoint_fit` (one line naming the file
      and the tensors when a checkpoint does not fit the model);
    - applies the fixes for the stack :mod:`fastmim_mm.compat` holds, each
      where its condition holds.

    ``import fastmim_mm`` calls it with ``init_default_scope=False``: a
    config's ``custom_imports`` can only import.

    Args:
        init_default_scope (bool): Whether to set the default scope to
            ``mmpretrain``, whose registries FastMIM's modules are in.
            Defaults to True.
    """
    register_mmpretrain(init_default_scope)
    import fastmim_mm.datasets  # noqa: F401
    import fastmim_mm.engine  # noqa: F401
    import fastmim_mm.models  # noqa: F401
    import fastmim_mm.visualization  # noqa: F401
    from fastmim_mm.compat import apply_compat_fixes
    from fastmim_mm.engine import check_checkpoint_loading

    check_checkpoint_loading()
    apply_compat_fixes()
