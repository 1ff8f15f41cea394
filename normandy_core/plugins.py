"""Building the plugin manager: built-in, installed and project-local plugins.

There is no module-level plugin manager: every command builds its own with
:func:`make_plugin_manager`, so tests and embedded uses never share state.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from normandy_core import hookspecs
from normandy_core.errors import HookError, PluginError

PLUGINS_GROUP = "normandy.plugins"
PROCESSES_GROUP = "normandy.processes"

# Normandy's own plugins, registered through the same path as everybody else's.
_BUILTIN_PLUGINS: tuple[str, ...] = ("normandy_core.executors.builtin",)


@dataclass(frozen=True)
class PluginInfo:
    """Where a registered plugin came from: ``source`` is a distribution or a module name."""

    name: str
    source: str
    kind: str  # "builtin" | "installed" | "project"


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    def register_plugin(self, plugin: object, info: PluginInfo) -> None:
        if self.is_registered(plugin):  # installed and listed in confs.plugins: one plugin
            return
        try:
            self.register(plugin, name=info.name)
            self.check_pending()
        except pluggy.PluginValidationError as exc:
            self.unregister(name=info.name)
            raise PluginError(
                info.name, f"plugin {info.name!r} ({info.source}) is invalid: {exc}"
            ) from exc
        except ValueError as exc:  # already registered under that name: same module twice
            if self.get_plugin(info.name) is not plugin:
                raise PluginError(
                    info.name, f"plugin name {info.name!r} is used twice: {exc}"
                ) from exc
            return
        self.infos[info.name] = info

    def call_each(self, hook: str, **kwargs: Any) -> Iterator[tuple[PluginInfo, Any]]:
        """Call every implementation of ``hook`` one by one, yielding ``(plugin, result)``.

        Unlike ``pm.hook.X()``, this tells which plugin returned what, and turns an
        exception into a :class:`HookError` naming the plugin.
        """
        caller = getattr(self.hook, hook)
        for impl in reversed(caller.get_hookimpls()):
            info = self.infos.get(
                impl.plugin_name, PluginInfo(impl.plugin_name, impl.plugin_name, "unknown")
            )
            args = {name: kwargs[name] for name in impl.argnames if name in kwargs}
            try:
                result = impl.function(**args)
            except Exception as exc:
                raise HookError(info.name, hook, exc) from exc
            yield info, result


def make_plugin_manager(
    project_plugins: Sequence[str] = (),
    project_root: Path | None = None,
    *,
    installed: bool = True,
) -> PluginManager:
    """Build a plugin manager with Normandy's hook specifications and its plugins.

    Loads, in order: the built-in plugins, the ``normandy.plugins`` entry points of the
    installed distributions (unless ``installed`` is false), then the project-local
    modules ``project_plugins`` (dotted names), imported with ``project_root`` and its
    ``src/`` folder on ``sys.path``. Raises :class:`PluginError` naming a plugin that
    cannot be imported or implements an unknown hook.
    """
    pm = PluginManager()
    for module_name in _BUILTIN_PLUGINS:
        pm.register_plugin(
            importlib.import_module(module_name), PluginInfo(module_name, "normandy", "builtin")
        )
    if installed:
        for ep in _entry_points(PLUGINS_GROUP):
            dist = ep.dist.name if ep.dist is not None else ep.value
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    ep.name,
                    f"error importing plugin {ep.name!r} ({ep.value}, from distribution "
                    f"{dist}): {type(exc).__name__}: {exc}; fix or uninstall {dist}",
                ) from exc
            pm.register_plugin(plugin, PluginInfo(ep.name, dist, "installed"))
    if project_plugins:
        add_project_paths(project_root)
        for module_name in project_plugins:
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise PluginError(
                    module_name,
                    f"error importing project plugin {module_name!r} (listed in confs.plugins): "
                    f"{type(exc).__name__}: {exc}",
                ) from exc
            pm.register_plugin(module, PluginInfo(module_name, module_name, "project"))
    return pm


def add_project_paths(project_root: Path | None) -> None:
    """Put the project root and its ``src/`` folder first on ``sys.path`` (once)."""
    if project_root is None:
        return
    for folder in (project_root / "src", project_root):
        entry = str(folder)
        if folder.is_dir() and entry not in sys.path:
            sys.path.insert(0, entry)


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    """The entry points of ``group``, each (name, value) once even if a distribution is
    visible twice on ``sys.path`` (as editable installs sometimes are)."""
    seen: set[tuple[str, str]] = set()
    result = []
    for ep in metadata.entry_points(group=group):
        if (ep.name, ep.value) not in seen:
            seen.add((ep.name, ep.value))
            result.append(ep)
    return result


def available_executors(pm: PluginManager) -> dict[str, type]:
    """Every executor offered through ``normandy_executors``, by name."""
    found: dict[str, type] = {}
    for _info, result in pm.call_each("normandy_executors"):
        found.update(result or {})
    return found
