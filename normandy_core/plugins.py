"""Building the plugin manager: built-in, installed and project-local plugins.

There is no module-level plugin manager: every command builds its own with
:func:`make_plugin_manager`, so tests and embedded uses never share state.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from normandy_core import hookspecs
from normandy_core.errors import HookError, PluginError

PLUGINS_GROUP = "normandy.plugins"
PROCESSES_GROUP = "normandy.processes"

if TYPE_CHECKING:
    from normandy_core.executors import Executor

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

    def call_hook(self, hook: str, **kwargs: Any) -> Any:
        """Call ``hook`` through pluggy's hook caller (wrappers, ``firstresult`` and tracing
        as pluggy does them) and return what it returns; an implementation that raises is
        a :class:`HookError` naming its plugin."""
        caller = getattr(self.hook, hook)
        try:
            return caller(**kwargs)
        except Exception as exc:
            raise HookError(self._culprit(caller.get_hookimpls(), exc), hook, exc) from exc

    def call_each(self, hook: str, **kwargs: Any) -> Iterator[tuple[PluginInfo, Any]]:
        """Call ``hook`` plugin by plugin (each through pluggy), yielding
        ``(plugin, result)``: for the registration hooks, whose results must be told
        apart by where they came from. A raising implementation is a :class:`HookError`."""
        caller = getattr(self.hook, hook)
        impls = caller.get_hookimpls()
        for name in dict.fromkeys(impl.plugin_name for impl in reversed(impls)):
            others = [self.get_plugin(i.plugin_name) for i in impls if i.plugin_name != name]
            try:
                results = self.subset_hook_caller(hook, remove_plugins=others)(**kwargs)
            except Exception as exc:
                raise HookError(self._info(name).name, hook, exc) from exc
            for result in results if isinstance(results, list) else [results]:
                yield self._info(name), result

    def _info(self, plugin_name: str) -> PluginInfo:
        return self.infos.get(plugin_name, PluginInfo(plugin_name, plugin_name, "unknown"))

    def _culprit(self, impls: Sequence[pluggy.HookImpl], exc: BaseException) -> str:
        """The plugin whose implementation raised ``exc``: the innermost frame of the
        traceback that is one of the implementations' code."""
        codes = {
            impl.function.__code__: impl.plugin_name
            for impl in impls
            if hasattr(impl.function, "__code__")
        }
        culprit = None
        tb = exc.__traceback__
        while tb is not None:
            culprit = codes.get(tb.tb_frame.f_code, culprit)
            tb = tb.tb_next
        return self._info(culprit).name if culprit else "unknown"


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
            dist = dist_name(ep)
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


_scanned: tuple[tuple[tuple[str, int], ...], Any] | None = None
"""Every installed entry point, and the ``sys.path`` folders (with their modification
times) they were found on."""
_dist_names: dict[int, str] = {}


def _installed() -> Any:
    """Every installed entry point, of every group: found once for the plugins, the
    processes and the dataset types (each scan reads every distribution's metadata), and
    again where ``sys.path`` or one of its folders changed since (a package installed).
    Anything with ``select(group=...)`` (Python 3.11's ``SelectableGroups``, later
    ``EntryPoints``)."""
    global _scanned
    where = []
    for entry in sys.path:
        try:
            where.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            where.append((entry, -1))
    key = tuple(where)
    if _scanned is None or _scanned[0] != key:
        _dist_names.clear()
        _scanned = (key, metadata.entry_points())
    return _scanned[1]


def dist_name(ep: metadata.EntryPoint) -> str:
    """The name of the distribution offering ``ep`` (its value where none is known),
    read once per distribution (each read parses its metadata)."""
    dist = ep.dist
    if dist is None:
        return ep.value
    found = _dist_names.get(id(dist))
    if found is None:
        found = _dist_names[id(dist)] = dist.name
    return found


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    """The entry points of ``group``, each (name, value) once even if a distribution is
    visible twice on ``sys.path`` (as editable installs sometimes are)."""
    seen: set[tuple[str, str]] = set()
    result = []
    for ep in _installed().select(group=group):
        if (ep.name, ep.value) not in seen:
            seen.add((ep.name, ep.value))
            result.append(ep)
    return result


def available_executors(pm: PluginManager) -> dict[str, type[Executor]]:
    """Every executor offered through ``normandy_executors``, by name; a name offered by
    two plugins with different classes is a :class:`PluginError` naming both."""
    found: dict[str, type[Executor]] = {}
    sources: dict[str, str] = {}
    for info, result in pm.call_each("normandy_executors"):
        for name, cls in (result or {}).items():
            if name in found and found[name] is not cls:
                raise PluginError(
                    info.name,
                    f"executor {name!r} is offered by two plugins: {sources[name]} "
                    f"({_qualname(found[name])}) and {info.name} ({info.source}, "
                    f"{_qualname(cls)}); uninstall one of them",
                )
            found[name], sources[name] = cls, f"{info.name} ({info.source})"
    return found


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
