"""Normandy: data-processing pipelines of registered Python processes.

The public API for process and plugin authors. Everything else lives in submodules.

The names below are imported on first use (PEP 562), so that importing a submodule such
as ``normandy_core.errors`` — which every command does — does not pay for pluggy and the
variables storage: ``normandy --version`` and ``normandy list`` start faster.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "1.0.0"

_LAZY = {
    "ConfigError": "normandy_core.errors",
    "DuplicateProcessError": "normandy_core.errors",
    "ExecutorError": "normandy_core.errors",
    "HistoryError": "normandy_core.errors",
    "HookError": "normandy_core.errors",
    "NormandyError": "normandy_core.errors",
    "PluginError": "normandy_core.errors",
    "ProcessLoadError": "normandy_core.errors",
    "ProjectExistsError": "normandy_core.errors",
    "ProjectNotFoundError": "normandy_core.errors",
    "RegistryError": "normandy_core.errors",
    "ReportError": "normandy_core.errors",
    "ResumeError": "normandy_core.errors",
    "RunNotFoundError": "normandy_core.errors",
    "SelectionError": "normandy_core.errors",
    "UiError": "normandy_core.errors",
    "VariableNotFoundError": "normandy_core.errors",
    "check_variable_name": "normandy_core.store",
    "hookimpl": "normandy_core.hookspecs",
    "hookspec": "normandy_core.hookspecs",
    "load": "normandy_core.catalog",
    "variables_storage": "normandy_core.pipe",
}

if TYPE_CHECKING:
    from normandy_core.catalog import load
    from normandy_core.errors import (
        ConfigError,
        DuplicateProcessError,
        ExecutorError,
        HistoryError,
        HookError,
        NormandyError,
        PluginError,
        ProcessLoadError,
        ProjectExistsError,
        ProjectNotFoundError,
        RegistryError,
        ReportError,
        ResumeError,
        RunNotFoundError,
        SelectionError,
        UiError,
        VariableNotFoundError,
    )
    from normandy_core.hookspecs import hookimpl, hookspec
    from normandy_core.pipe import variables_storage
    from normandy_core.store import check_variable_name

__all__ = [
    "ConfigError",
    "DuplicateProcessError",
    "ExecutorError",
    "HistoryError",
    "HookError",
    "NormandyError",
    "PluginError",
    "ProcessLoadError",
    "ProjectExistsError",
    "ProjectNotFoundError",
    "RegistryError",
    "ReportError",
    "ResumeError",
    "RunNotFoundError",
    "SelectionError",
    "UiError",
    "VariableNotFoundError",
    "__version__",
    "check_variable_name",
    "hookimpl",
    "hookspec",
    "load",
    "variables_storage",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'normandy_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain attribute read
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
