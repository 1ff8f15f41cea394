"""The flows of a configuration: their steps and the process entries of each step
(SPEC 6), read from the YAML tree with every problem positioned."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from normandy_core.config import _schema
from normandy_core.config._nodes import EMPTY, Location, frozen, locate, mapping, sortable_keys
from normandy_core.config._yaml import PathKey, YamlDocument
from normandy_core.errors import Problem
from normandy_core.registry import NAME_PATTERN

_PROCESS_NAME = re.compile(NAME_PATTERN + r"\Z")


@dataclass(frozen=True)
class IterParam:
    """Fan a process out into one task per value, each with ``params[name] = value``."""

    name: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class ProcessEntry:
    """One process in a step, with its options (SPEC 6)."""

    name: str
    where: Location
    params: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    avoid_tags: tuple[str, ...] = ()
    error_tolerance: bool = False
    iter_param: IterParam | None = None
    retries: int = 0
    retry_delay: float = 0.0
    timeout: float | None = None


@dataclass(frozen=True)
class StepConfig:
    name: str
    entries: tuple[ProcessEntry, ...]
    where: Location


@dataclass(frozen=True)
class FlowConfig:
    name: str
    tags: tuple[str, ...]
    params: Mapping[str, Any]
    steps: tuple[StepConfig, ...]
    where: Location


def read_flow(
    doc: YamlDocument, name: str, body: Mapping[str, Any], problems: list[Problem]
) -> FlowConfig:
    keys: list[PathKey] = ["flows", name]
    tags = body.get("tags")
    steps = [
        _read_step(doc, [*keys, "steps", step], step, entries, problems)
        for step, entries in mapping(body.get("steps")).items()
    ]
    return FlowConfig(
        name=name,
        tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
        params=frozen(body.get("params")),
        steps=tuple(steps),
        where=locate(doc, keys, at_key=True),
    )


def _read_step(
    doc: YamlDocument, keys: list[PathKey], name: str, body: Any, problems: list[Problem]
) -> StepConfig:
    entries: list[ProcessEntry] = []
    if isinstance(body, list):
        for i, item in enumerate(body):
            if isinstance(item, str):
                entries.append(_read_entry(doc, [*keys, i], item, None, problems, at_key=False))
            elif isinstance(item, Mapping) and len(item) == 1:
                ((process, options),) = item.items()
                entries.append(_read_entry(doc, [*keys, i, process], process, options, problems))
            else:
                problems.append(doc.problem([*keys, i], _bad_item(item)))
    elif isinstance(body, Mapping):
        for process, options in body.items():
            entries.append(_read_entry(doc, [*keys, process], process, options, problems))
    if body is None or (isinstance(body, (list, Mapping)) and not body):
        problems.append(
            doc.problem(keys, f"step {name!r} has no processes; list at least one", at_key=True)
        )
    seen: dict[str, ProcessEntry] = {}  # task name -> the entry that makes it
    for entry in entries:
        values = entry.iter_param.values if entry.iter_param else (None,)
        for value in values:
            task = entry.name if value is None else f"{entry.name}[{value}]"
            first = seen.setdefault(task, entry)
            if first is entry:
                continue
            what = f"process {entry.name!r}" if value is None else f"task {task!r}"
            problems.append(
                entry.where.problem(
                    f"{what} appears twice in step {name!r} (first at line {first.where.line}); "
                    "a process runs once per step, use iter_param to run it once per value"
                )
            )
            break
    return StepConfig(name, tuple(entries), locate(doc, keys, at_key=True))


def _bad_item(item: Any) -> str:
    message = "each item must be a process name, or a one-key mapping 'name: {options}'"
    if isinstance(item, Mapping) and len(item) > 1:
        first, *others = item
        options = [k for k in others if k in _schema.PROCESS_OPTIONS]
        if options:  # `- name:` then its options at the indentation of the name
            shown = ", ".join(map(repr, options))
            what = "looks like an option" if len(options) == 1 else "look like options"
            them = "it" if len(options) == 1 else "them"
            message += (
                f"; {shown} {what} of {first!r}: indent {them} under {first!r}, two more "
                "spaces than the name"
            )
    return message


def _read_entry(
    doc: YamlDocument,
    keys: list[PathKey],
    name: Any,
    options: Any,
    problems: list[Problem],
    *,
    at_key: bool = True,
) -> ProcessEntry:
    where = locate(doc, keys, at_key=at_key)
    if not isinstance(name, str) or not _PROCESS_NAME.match(name):
        problems.append(where.problem(f"invalid process name {name!r}: names match {NAME_PATTERN}"))
    if options is None:
        return ProcessEntry(str(name), where)
    if not isinstance(options, Mapping):
        problems.append(
            doc.problem(
                keys,
                f"the options of process {name!r} must be a mapping "
                "(params, avoid_tags, error_tolerance, iter_param, retries, "
                f"retry_delay, timeout) or nothing, not {type(options).__name__}",
            )
        )
        return ProcessEntry(str(name), where)
    options = sortable_keys(doc, options, {"schema": _schema.PROCESS_OPTIONS}, keys, problems)
    option_problems = _schema.check(doc, options, _schema.PROCESS_OPTIONS, keys)
    problems.extend(option_problems)
    if option_problems:
        return ProcessEntry(str(name), where)
    iter_param = None
    if options.get("iter_param") is not None:
        raw = options["iter_param"]
        values = tuple(raw["values"])
        iter_keys = [*keys, "iter_param", "values"]
        names: set[str] = set()  # values become task names: equal as text, same task
        for i, value in enumerate(values):
            if not isinstance(value, (str, int, float, bool)):
                problems.append(
                    doc.problem(
                        [*iter_keys, i],
                        "iter_param values must be scalars "
                        "(strings or numbers): each becomes part of a task name",
                    )
                )
            elif str(value) in names:
                problems.append(
                    doc.problem(
                        [*iter_keys, i],
                        f"value {value!r} is listed twice (as the task {name}[{value}])",
                    )
                )
            names.add(str(value))
        iter_param = IterParam(str(raw["name"]), values)
    timeout = options.get("timeout")
    return ProcessEntry(
        name=str(name),
        where=where,
        params=frozen(options.get("params")),
        avoid_tags=tuple(options.get("avoid_tags") or ()),
        error_tolerance=bool(options.get("error_tolerance", False)),
        iter_param=iter_param,
        retries=int(options.get("retries", 0)),
        retry_delay=float(options.get("retry_delay", 0)),
        timeout=float(timeout) if timeout is not None else None,
    )
