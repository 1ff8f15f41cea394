"""Checks that need the registry: process names, process signatures, executors."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable

from normandy_core.config._model import ProjectConfig
from normandy_core.errors import Problem, ProcessLoadError
from normandy_core.registry import Registry


def check_processes(
    config: ProjectConfig,
    registry: Registry,
    flows: Iterable[str] | None = None,
    *,
    signatures: bool = True,
) -> list[Problem]:
    """Problems with the processes used by ``flows`` (all flows when ``None``): unknown
    names (with a *did you mean*) and, with ``signatures``, processes that cannot be
    imported or ask for arguments other than ``pipe``, ``log`` and ``params``.

    Only the processes used by those flows are imported, each once.
    """
    names = list(config.flows) if flows is None else [f for f in flows if f in config.flows]
    problems: list[Problem] = []
    checked: dict[str, str | None] = {}
    for flow in names:
        for step in config.flows[flow].steps:
            for entry in step.entries:
                if entry.name not in registry:
                    problems.append(entry.where.problem(_unknown(entry.name, registry)))
                    continue
                if not signatures:
                    continue
                if entry.name not in checked:
                    try:
                        registry.check(entry.name)
                        checked[entry.name] = None
                    except ProcessLoadError as exc:
                        checked[entry.name] = str(exc)
                message = checked[entry.name]
                if message is not None:
                    problems.append(entry.where.problem(message))
    return problems


def _unknown(name: str, registry: Registry) -> str:
    fix = (
        "register it through the entry-point group normandy.processes of an installed "
        "package, a plugin's normandy_processes hook, or a module listed in confs.plugins "
        "(`normandy list` shows what is registered)"
    )
    close = registry.suggest(name)
    if close:
        return f"unknown process {name!r}; did you mean {' or '.join(map(repr, close))}? Or {fix}"
    return f"unknown process {name!r}; {fix}"


def check_executor(
    config: ProjectConfig, name: str, known: Collection[str], from_command_line: bool
) -> list[Problem]:
    """A problem if ``name`` is not one of the ``known`` executors."""
    if name in known:
        return []
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    origin = " (from --executor)" if from_command_line else ""
    where = config.where("confs.executor")
    return [
        where.problem(
            f"unknown executor {name!r}{origin}; {hint}the executors are: "
            f"{', '.join(sorted(known))}"
        )
    ]
