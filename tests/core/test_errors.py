"""Normandy's exceptions: one hierarchy under ``NormandyError``, every class defined in
``normandy_core.errors``, drawn in its docstring and exported by ``normandy_core``."""

from __future__ import annotations

import importlib
import pkgutil

import normandy_core
from normandy_core import errors


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def test_every_normandy_error_is_in_the_errors_module_and_its_tree():
    skipped = ("normandy_core.executors.dask",)  # needs the extra; its errors are ExecutorError
    for module in pkgutil.walk_packages(normandy_core.__path__, "normandy_core."):
        if not module.name.startswith(skipped):
            importlib.import_module(module.name)
    classes = _all_subclasses(errors.NormandyError) | {errors.NormandyError}
    assert errors.__doc__ is not None
    for cls in classes:
        assert cls.__module__ == "normandy_core.errors", f"{cls.__qualname__} lives elsewhere"
        assert f"── {cls.__name__} " in errors.__doc__ or cls is errors.NormandyError, cls
        assert cls.__name__ in normandy_core.__all__, f"{cls.__name__} is not exported"
        assert cls.__doc__, f"{cls.__name__} has no docstring"
