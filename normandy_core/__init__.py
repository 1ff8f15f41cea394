"""Normandy: data-processing pipelines of registered Python processes.

The public API for process and plugin authors. Everything else lives in submodules.
"""

from __future__ import annotations

from normandy_core.errors import (
    ConfigError,
    DuplicateProcessError,
    ExecutorError,
    HookError,
    NormandyError,
    PluginError,
    ProcessLoadError,
    ProjectNotFoundError,
    RegistryError,
    SelectionError,
)
from normandy_core.hookspecs import hookimpl, hookspec
from normandy_core.pipe import variables_storage

__version__ = "1.0.0.dev0"

__all__ = [
    "ConfigError",
    "DuplicateProcessError",
    "ExecutorError",
    "HookError",
    "NormandyError",
    "PluginError",
    "ProcessLoadError",
    "ProjectNotFoundError",
    "RegistryError",
    "SelectionError",
    "__version__",
    "hookimpl",
    "hookspec",
    "variables_storage",
]
