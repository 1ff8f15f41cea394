"""The registry: process names -> importable targets, from entry points and plugins.

Listing never imports a process module: entry points are read from distribution metadata,
and a plugin may return ``"module:attribute"`` strings. A process is imported only by
:meth:`Registry.load`, which validation and the workers call for the processes they need.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from normandy_core.errors import DuplicateProcessError, PluginError, ProcessLoadError

if TYPE_CHECKING:
    # plugins (pluggy, importlib.metadata) only when a registry is built: the workers
    # import this module for import_target and call_arguments, and start faster without
    from normandy_core.plugins import PluginManager

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_.-]*"
_NAME_RE = re.compile(NAME_PATTERN + r"\Z")

PROCESS_ARGUMENTS = ("pipe", "log", "params")
"""The parameters Normandy can pass to a process, by name."""


@dataclass(frozen=True)
class ProcessSpec:
    """One registered process.

    ``target`` is ``"module:qualified.name"``; ``source`` the distribution or module that
    registered it; ``kind`` one of ``"entry point"``, ``"plugin"``, ``"project"``.
    """

    name: str
    target: str
    source: str
    kind: str
    obj: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        return f"{self.target} (from {self.source})"


class Registry:
    """Every process name known to a command, and how to import it."""

    def __init__(self, specs: dict[str, ProcessSpec] | None = None) -> None:
        self._specs: dict[str, ProcessSpec] = dict(specs or {})
        self._loaded: dict[str, Callable[..., Any]] = {}

    def add(self, spec: ProcessSpec) -> None:
        """Register ``spec``; the same target twice is fine, two targets is an error."""
        if not _NAME_RE.match(spec.name):
            raise ProcessLoadError(
                f"invalid process name {spec.name!r} registered by {spec.source}: "
                f"names must match {NAME_PATTERN}"
            )
        known = self._specs.get(spec.name)
        if known is None:
            self._specs[spec.name] = spec
        elif not _same_target(known, spec):
            raise DuplicateProcessError(spec.name, known.describe(), spec.describe())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ProcessSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, name: str) -> ProcessSpec:
        return self._specs[name]

    def suggest(self, name: str) -> list[str]:
        """Registered names close to ``name``, best first (for *did you mean*)."""
        return difflib.get_close_matches(name, self._specs, n=3, cutoff=0.6)

    def load(self, name: str) -> Callable[..., Any]:
        """Import (once) and return the callable registered as ``name``."""
        fn = self._loaded.get(name)
        if fn is None:
            spec = self._specs[name]
            fn = spec.obj if spec.obj is not None else import_target(spec.target, name, spec.source)
            self._loaded[name] = fn
        return fn

    def check(self, name: str) -> tuple[str, ...]:
        """Import ``name`` and check it can be called; return the arguments it takes.

        Raises :class:`ProcessLoadError` when it cannot be imported or asks for
        arguments Normandy cannot give.
        """
        spec = self._specs[name]
        return call_arguments(self.load(name), name, spec.target)


def build_registry(pm: PluginManager) -> Registry:
    """Collect the processes of the ``normandy.processes`` entry points (without importing
    them) and of every plugin's ``normandy_processes`` hook."""
    from normandy_core.plugins import PROCESSES_GROUP, _entry_points

    registry = Registry()
    for ep in _entry_points(PROCESSES_GROUP):
        source = ep.dist.name if ep.dist is not None else ep.value
        registry.add(ProcessSpec(ep.name, ep.value.replace(" ", ""), source, "entry point"))
    for info, result in pm.call_each("normandy_processes"):
        if result is None:
            continue
        if not hasattr(result, "items"):
            raise PluginError(
                info.name,
                f"plugin {info.name!r} ({info.source}): normandy_processes must return a "
                f"mapping name -> callable or 'module:attribute', not {type(result).__name__}",
            )
        kind = "project" if info.kind == "project" else "plugin"
        for name, target in result.items():
            registry.add(_spec_from_hook(str(name), target, info.source, kind))
    return registry


def _spec_from_hook(name: str, target: object, source: str, kind: str) -> ProcessSpec:
    if isinstance(target, str):
        if ":" not in target:
            raise ProcessLoadError(
                f"process {name!r} from {source}: target {target!r} must look like "
                "'package.module:function'"
            )
        return ProcessSpec(name, target.replace(" ", ""), source, kind)
    if callable(target):
        module = getattr(target, "__module__", None) or "?"
        qualname = getattr(target, "__qualname__", None) or repr(target)
        return ProcessSpec(name, f"{module}:{qualname}", source, kind, obj=target)
    raise ProcessLoadError(
        f"process {name!r} from {source}: expected a callable or 'module:attribute', "
        f"got {type(target).__name__}"
    )


def _same_target(a: ProcessSpec, b: ProcessSpec) -> bool:
    if a.obj is not None and b.obj is not None:
        return a.obj is b.obj
    return a.target == b.target


def import_target(target: str, name: str = "", source: str = "") -> Callable[..., Any]:
    """Import ``"module:qualified.name"`` and return the object, or raise
    :class:`ProcessLoadError` saying which process and why."""
    label = f"process {name!r} ({target}" + (f", from {source})" if source else ")")
    module_name, _, attr_path = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ProcessLoadError(f"cannot import {label}: {type(exc).__name__}: {exc}") from exc
    for attr in attr_path.split(".") if attr_path else ():
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise ProcessLoadError(
                f"cannot import {label}: {module_name} has no attribute {attr_path!r}"
            ) from None
    if not callable(obj):
        raise ProcessLoadError(f"{label} is not callable but {type(obj).__name__}")
    return obj  # type: ignore[no-any-return]


def call_arguments(fn: Callable[..., Any], name: str = "", target: str = "") -> tuple[str, ...]:
    """Which of ``pipe``, ``log``, ``params`` to pass to ``fn``, by name.

    Raises :class:`ProcessLoadError` if ``fn`` requires any other argument.
    """
    label = f"process {name!r}" + (f" ({target})" if target else "")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return PROCESS_ARGUMENTS  # a builtin without a signature: trust it
    wanted: list[str] = []
    for param in signature.parameters.values():
        if param.kind is param.VAR_KEYWORD:
            return PROCESS_ARGUMENTS
        if param.kind is param.VAR_POSITIONAL:
            continue
        if param.name in PROCESS_ARGUMENTS and param.kind is not param.POSITIONAL_ONLY:
            wanted.append(param.name)
        elif param.default is param.empty:
            raise ProcessLoadError(
                f"{label} requires the parameter {param.name!r}, which Normandy cannot give: "
                "a process may only take pipe, log and params (by name); give "
                f"{param.name!r} a default or read it from params"
            )
    return tuple(wanted)
