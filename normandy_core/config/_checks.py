"""Checks that need the registry or the machine: process names, process signatures,
executors, the store."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING

from normandy_core.config._model import ProjectConfig
from normandy_core.config._schema import CONFS_SCHEMA, PROCESS_OPTIONS
from normandy_core.errors import Problem, ProcessLoadError
from normandy_core.registry import Registry

if TYPE_CHECKING:
    from normandy_core._import_check import ImportChecks


def check_processes(
    config: ProjectConfig,
    registry: Registry,
    flows: Iterable[str] | None = None,
    *,
    signatures: bool = True,
    imports: bool = True,
    imported: ImportChecks | None = None,
) -> list[Problem]:
    """Problems with the processes used by ``flows`` (all flows when ``None``): unknown
    names (with a *did you mean*), names registered to several targets (each use of them,
    with every source and the ways out) and, with ``signatures``, processes whose
    signature cannot be served — and, with ``imports``, that cannot be imported.

    Only the processes used by those flows are imported, each module once, in child
    processes side by side (:mod:`normandy_core._import_check`; ``imported``: those checks,
    started by the caller, which did other checks meanwhile); without ``imports``,
    a signature is read from the module's source where that is certain (see
    :mod:`normandy_core.signatures`), and the module imported only where it is not.
    """
    names = list(config.flows) if flows is None else [f for f in flows if f in config.flows]
    problems: list[Problem] = []
    checked: dict[str, str | None] = {}
    if signatures and imports:  # every module imported once, side by side, not here
        from normandy_core._import_check import ImportChecks

        checked = (imported or ImportChecks(registry, checkable(config, registry, names))).result()
    for flow in names:
        for step in config.flows[flow].steps:
            for entry in step.entries:
                if entry.process not in registry:
                    where = entry.place("process")
                    problems.append(where.problem(_unknown(entry.process, registry)))
                    continue
                clash = registry.clash(entry.process)
                if clash is not None:
                    problems.append(entry.where.problem(str(clash)))
                    continue
                if not signatures:
                    continue
                if entry.process not in checked:
                    try:
                        registry.signature(entry.process, load=imports)
                        checked[entry.process] = None
                    except ProcessLoadError as exc:
                        checked[entry.process] = str(exc)
                message = checked[entry.process]
                if message is not None:
                    problems.append(entry.where.problem(message))
    return problems


def checkable(
    config: ProjectConfig, registry: Registry, flows: Iterable[str] | None = None
) -> list[str]:
    """The processes ``flows`` use (all flows when ``None``) whose signature can be checked:
    known, and registered to one target."""
    names = list(config.flows) if flows is None else [f for f in flows if f in config.flows]
    used = (e.process for f in names for s in config.flows[f].steps for e in s.entries)
    return [p for p in dict.fromkeys(used) if p in registry and registry.clash(p) is None]


def _unknown(name: str, registry: Registry) -> str:
    misplaced = _misplaced_option(name)
    if misplaced:
        return misplaced
    fix = (
        "register it through the entry-point group normandy.processes of an installed "
        "package, a plugin's normandy_processes hook, or a module listed in confs.plugins "
        "(`normandy list` shows what is registered)"
    )
    close = registry.suggest(name)
    if close:
        return f"unknown process {name!r}; did you mean {' or '.join(map(repr, close))}? Or {fix}"
    return f"unknown process {name!r}; {fix}"


def _misplaced_option(name: str) -> str | None:
    """For a "process" named like a process option (``params``): the key is indented one
    level too far out, under the step instead of under its process."""
    if name not in PROCESS_OPTIONS:
        return None
    return (
        f"unknown process {name!r}: {name!r} is an option of a process entry, so it looks "
        "indented one level too far out; indent it under the process it belongs to, two "
        "more spaces than that process's name"
    )


def check_executor(
    config: ProjectConfig, name: str, known: Mapping[str, type], from_command_line: bool
) -> list[Problem]:
    """A problem if ``name`` is not one of the ``known`` executors, or cannot be used here
    (a missing optional dependency)."""
    origin = " (from --executor)" if from_command_line else ""
    where = config.where("confs.executor")
    if name in known:
        unavailable = getattr(known[name], "unavailable", None)
        reason = unavailable() if callable(unavailable) else None
        return [where.problem(f"executor {name!r}{origin} cannot run: {reason}")] if reason else []
    close = difflib.get_close_matches(name, list(known), n=1)
    listed = f"the executors are: {', '.join(sorted(known))}"
    if close:
        listed = f"did you mean {close[0]!r}? The executors are: {', '.join(sorted(known))}"
    return [where.problem(f"unknown executor {name!r}{origin}; {listed}")]


def check_store(config: ProjectConfig) -> list[Problem]:
    """A problem if the store (``confs.store``, by default ``.normandy/``) cannot be used
    on this machine: a local path that is a file or cannot be written, fsspec or the
    package of its protocol missing, an unknown protocol."""
    from normandy_core.store import store_problem

    reason = store_problem(config.store or ".normandy", config.root)
    return [config.where("confs.store").problem(reason)] if reason else []


def check_engine_sections(config: ProjectConfig, executors: Collection[str]) -> list[Problem]:
    """``confs.<name>`` mappings that name no executor are unknown keys."""
    problems = []
    for name, where in config.engine_sections.items():
        if name in executors:
            continue
        close = difflib.get_close_matches(name, [*CONFS_SCHEMA, *executors], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.append(
            where.problem(
                f"unknown key {name!r}{hint} (a section of its own is allowed for an executor "
                f"added by a plugin; the executors are: {', '.join(sorted(executors))})"
            )
        )
    return problems
