"""The registry: process names -> importable targets, from entry points and plugins.

Listing never imports a process module: entry points are read from distribution metadata
(or from the project's own ``setup.cfg``/``pyproject.toml``), and a plugin may return
``"module:attribute"`` strings. A process is imported only by :meth:`Registry.load`, which
validation and the workers call for the processes they need.

One name may be registered to several different targets (a *clash*, SPEC 14): the
registry keeps them all, and the clash is an error only where the name is used
(:meth:`Registry.get`, and the checks of the flows that use it). A target the project
chooses in ``confs.processes`` wins over every other registration of its name.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from normandy_core.binding import Signature, signature_of
from normandy_core.errors import DuplicateProcessError, PluginError, ProcessLoadError

if TYPE_CHECKING:
    # plugins (pluggy, importlib.metadata) only when a registry is built: the workers
    # import this module for import_target and call_arguments, and start faster without
    from normandy_core.package_file import DeclaredProcesses
    from normandy_core.plugins import PluginManager

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_.-]*"
_NAME_RE = re.compile(NAME_PATTERN + r"\Z")
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
TARGET_PATTERN = _DOTTED + ":" + _DOTTED
"""``package.module:function`` (or ``module:Class.method``)."""
_AS_CLOSE = 0.03
"""How much less alike than the closest name another may be, and still be suggested."""


ENTRY_POINT = "entry point"
PLUGIN = "plugin"
PROJECT_PLUGIN = "project"
PROJECT_PACKAGE = "project package"
CHOSEN = "confs.processes"
PROJECT_SOURCE = "project"
"""The source of every process of ``confs.processes``."""


@dataclass(frozen=True)
class ProcessSpec:
    """One registered process.

    ``target`` is ``"module:qualified.name"``; ``source`` the distribution or module that
    registered it (``project`` for ``confs.processes``); ``kind`` how: ``"entry point"``
    (an installed distribution), ``"plugin"`` (an installed plugin's hook), ``"project"``
    (a module of ``confs.plugins``), ``"project package"`` (the entry points of the
    project's own ``setup.cfg``/``pyproject.toml``) or ``"confs.processes"``.
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

    def __init__(self, specs: Iterable[ProcessSpec] = ()) -> None:
        self._specs: dict[str, list[ProcessSpec]] = {}
        self._chosen: dict[str, ProcessSpec] = {}
        self._loaded: dict[str, Callable[..., Any]] = {}
        self._static: dict[str, Signature | None] = {}
        """Target -> its signature read from the source (``None``: not certain without
        importing), once for every process naming it: a registry lives for one command."""
        for spec in specs:
            self.add(spec)

    def add(self, spec: ProcessSpec) -> None:
        """Register ``spec``. The same target twice is one registration (the first kept);
        a different target under a known name is kept too, as a clash."""
        _check_name(spec)
        known = self._specs.setdefault(spec.name, [])
        if not any(_same_target(k, spec) for k in known):
            known.append(spec)

    def choose(self, spec: ProcessSpec) -> None:
        """Register the project's own choice for ``spec.name`` (``confs.processes``): it
        wins over every other registration of that name."""
        _check_name(spec)
        self._chosen[spec.name] = spec

    def __contains__(self, name: object) -> bool:
        return name in self._chosen or name in self._specs

    def __iter__(self) -> Iterator[ProcessSpec]:
        """Every registration in effect, by name: a chosen target alone, else every target
        of the name (several where it clashes)."""
        for name in self.names():
            yield from self.targets(name)

    def __len__(self) -> int:
        return len(self._specs.keys() | self._chosen.keys())

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._specs.keys() | self._chosen.keys())

    def targets(self, name: str) -> tuple[ProcessSpec, ...]:
        """What ``name`` stands for: the chosen target alone, else every registered one."""
        chosen = self._chosen.get(name)
        return (chosen,) if chosen is not None else tuple(self._specs.get(name, ()))

    def overridden(self, name: str) -> tuple[ProcessSpec, ...]:
        """The registrations of ``name`` that the project's choice hides."""
        return tuple(self._specs.get(name, ())) if name in self._chosen else ()

    def clashes(self) -> dict[str, tuple[ProcessSpec, ...]]:
        """The names with several targets and no choice, and their targets."""
        return {
            name: tuple(specs)
            for name, specs in sorted(self._specs.items())
            if len(specs) > 1 and name not in self._chosen
        }

    def clash(self, name: str) -> DuplicateProcessError | None:
        """The error of using ``name`` where it has several targets, else ``None``."""
        specs = self.targets(name)
        return DuplicateProcessError(name, clash_message(name, specs)) if len(specs) > 1 else None

    def get(self, name: str) -> ProcessSpec:
        """The one target of ``name``. Raises :class:`KeyError` for an unknown name and
        :class:`DuplicateProcessError` where it clashes."""
        specs = self.targets(name)
        if not specs:
            raise KeyError(name)
        error = self.clash(name)
        if error is not None:
            raise error
        return specs[0]

    def suggest(self, name: str) -> list[str]:
        """Registered names close to ``name`` (for *did you mean*): the closest, and
        others only as close as it — names of one package share their prefix, so that
        ``acme.transfrom_totals`` is a little like every ``acme.`` name. A name given
        without its package's prefix is found by it (``clean_rows``: ``acme.clean_rows``)."""
        names = self.names()
        prefixed = [n for n in names if n.endswith("." + name)]
        if prefixed:
            return prefixed[:3]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        if not close:
            return []
        best = difflib.SequenceMatcher(None, name, close[0]).ratio()
        return [
            c
            for c in close
            if difflib.SequenceMatcher(None, name, c).ratio() >= best - _AS_CLOSE
        ]

    def load(self, name: str) -> Callable[..., Any]:
        """Import (once) and return the callable registered as ``name``."""
        fn = self._loaded.get(name)
        if fn is None:
            spec = self.get(name)
            fn = spec.obj if spec.obj is not None else import_target(spec.target, name, spec.source)
            self._loaded[name] = fn
        return fn

    def check(self, name: str) -> Signature:
        """Import ``name`` and check it can be called; return its signature.

        Raises :class:`ProcessLoadError` when it cannot be imported or has a parameter
        Normandy cannot give.
        """
        spec = self.get(name)
        return signature_of(self.load(name), name, spec.target)

    def signature(self, name: str, *, load: bool = False) -> Signature:
        """The signature of ``name``: read from its module's source where that is certain,
        else (or with ``load``) by importing it (:meth:`check`)."""
        spec = self.get(name)
        if spec.obj is not None:
            return signature_of(spec.obj, name, spec.target)
        if not load and name not in self._loaded:
            if spec.target in self._static:
                found = self._static[spec.target]
            else:
                from normandy_core.signatures import static_signature

                found = self._static[spec.target] = static_signature(spec.target, name)
            if found is not None:
                return found
        return self.check(name)


def clash_message(name: str, specs: Sequence[ProcessSpec]) -> str:
    """What using ``name`` with these targets means, and both ways out: choose one in
    ``confs.processes``, or remove one of its sources."""
    specs = sorted(specs, key=lambda s: (s.source, s.target))  # whatever the plugins' order
    listed = "; ".join(s.describe() for s in specs)
    removals = []
    installed = _unique(s.source for s in specs if s.kind in (ENTRY_POINT, PLUGIN))
    if installed:
        removals.append(f"uninstall {' or '.join(installed)} (pip uninstall NAME)")
    modules = _unique(s.source for s in specs if s.kind == PROJECT_PLUGIN)
    if modules:
        removals.append(f"remove {' or '.join(modules)} from confs.plugins")
    if any(s.kind == PROJECT_PACKAGE for s in specs):
        removals.append("rename it in this project's own entry points")
    way_out = (
        f"choose one in confs.processes of pipeline_conf.yml ({name}: \"{specs[0].target}\")"
    )
    if removals:
        way_out += ", or " + ", or ".join(removals)
    return (
        f"process {name!r} is registered with {len(specs)} different targets: {listed}; "
        f"{way_out}"
    )


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _check_name(spec: ProcessSpec) -> None:
    if not _NAME_RE.match(spec.name):
        raise ProcessLoadError(
            f"invalid process name {spec.name!r} registered by {spec.source}: "
            f"names must match {NAME_PATTERN}"
        )


def build_registry(
    pm: PluginManager,
    declared: DeclaredProcesses | None = None,
    chosen: Mapping[str, str] | None = None,
) -> Registry:
    """Collect the processes of the project's own package file (``declared``), of the
    installed ``normandy.processes`` entry points (without importing them; those of the
    project's own distribution are the same source as ``declared`` and skipped), of every
    plugin's ``normandy_processes`` hook, and the project's choices ``chosen``
    (``confs.processes``: name -> ``"module:attribute"``)."""
    from normandy_core.package_file import normalize_dist_name
    from normandy_core.plugins import PROCESSES_GROUP, _entry_points, dist_name

    registry = Registry()
    own = None
    if declared is not None:
        own = normalize_dist_name(declared.dist) if declared.dist else None
        for name, target in declared.processes.items():
            registry.add(ProcessSpec(name, target, declared.source, PROJECT_PACKAGE))
    for ep in _entry_points(PROCESSES_GROUP):
        if ep.dist is not None and own is not None and normalize_dist_name(dist_name(ep)) == own:
            continue  # an installed or editable copy of the project itself: its file rules
        source = dist_name(ep)
        registry.add(ProcessSpec(ep.name, ep.value.replace(" ", ""), source, ENTRY_POINT))
    for info, result in pm.call_each("normandy_processes"):
        if result is None:
            continue
        if not hasattr(result, "items"):
            raise PluginError(
                info.name,
                f"plugin {info.name!r} ({info.source}): normandy_processes must return a "
                f"mapping name -> callable or 'module:attribute', not {type(result).__name__}",
            )
        kind = PROJECT_PLUGIN if info.kind == "project" else PLUGIN
        for name, target in result.items():
            registry.add(_spec_from_hook(str(name), target, info.source, kind))
    for name, target in (chosen or {}).items():
        registry.choose(ProcessSpec(name, target, PROJECT_SOURCE, CHOSEN))
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
