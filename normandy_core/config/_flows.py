"""The flows of a configuration: their steps and the process entries of each step
(SPEC 6), read from the YAML tree with every problem positioned."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from normandy_core.binding import (
    PARAMS,
    VARIABLE_PATTERN,
    FromParams,
    Gathered,
    Outputs,
    Scope,
    Source,
)
from normandy_core.config import _schema
from normandy_core.config._nodes import EMPTY, Location, frozen, locate, mapping, sortable_keys
from normandy_core.config._yaml import PathKey, YamlDocument
from normandy_core.errors import Problem
from normandy_core.registry import NAME_PATTERN

_PROCESS_NAME = re.compile(NAME_PATTERN + r"\Z")
_VARIABLE = re.compile(VARIABLE_PATTERN + r"\Z")


@dataclass(frozen=True)
class IterParam:
    """Fan a process out into one task per value, each with ``params[name] = value``."""

    name: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class MapSpec:
    """``map:`` of an entry (SPEC 19): one task per element of ``variable`` (a list, or a
    mapping), the element given to the parameter ``param`` (``map_as``); at most
    ``limit`` elements (``max_map``)."""

    variable: str
    param: str = "item"
    limit: int = 10_000


MAX_MAP = 10_000
"""``max_map``'s default."""


@dataclass(frozen=True)
class TemplateUse:
    """Where an entry made from a template comes from (SPEC 20): the use, a step of a
    flow ``{use: template, namespace: …}``, and the positions of its keys."""

    template: str
    step: str
    """The use's step name: the expanded steps are ``step.template_step``."""
    where: Location
    places: Mapping[str, Location] = field(default_factory=lambda: EMPTY)
    """Where ``inputs.<name>`` and ``outputs.<name>`` of the use are written."""
    variables: frozenset[str] = frozenset()
    """The template variables its entries name (its processes' parameters name more)."""

    @property
    def via(self) -> str:
        """How a message about a template's line says through which use it is."""
        return (
            f"in template {self.template!r}, used by step {self.step!r} at line {self.where.line}"
        )


@dataclass(frozen=True)
class ProcessEntry:
    """One entry of a step, with its options (SPEC 6 and 12): the task ``name`` (its key
    in the step), running the registered ``process`` (``process:``, by default the name)."""

    name: str
    where: Location
    params: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    avoid_tags: tuple[str, ...] = ()
    error_tolerance: bool = False
    iter_param: IterParam | None = None
    retries: int = 0
    retry_delay: float = 0.0
    timeout: float | None = None
    process: str = ""
    """The registered process it runs: ``process:``, else the entry's name."""
    inputs: Mapping[str, Source] = field(default_factory=lambda: EMPTY)
    """``inputs:`` as a mapping: parameter -> what it gets (a variable, params, several
    variables: see :data:`normandy_core.binding.Source`)."""
    reads: tuple[str, ...] = ()
    """``inputs:`` as a list: variables the process reads through ``pipe.vars``."""
    outputs: Outputs | None = None
    places: Mapping[str, Location] = field(default_factory=lambda: EMPTY)
    """Where ``process``, ``inputs``, ``inputs.<parameter>`` and ``outputs`` are written."""
    cache: bool | None = None
    """``cache:`` of the entry; ``None``: its flow's, else ``confs.cache``."""
    pools: Mapping[str, int] = field(default_factory=lambda: EMPTY)
    """Units of ``confs.pools`` its tasks hold while they run (``pool:`` is one unit)."""
    map: MapSpec | None = None
    """``map:``: one task per element of a variable, known at run time."""
    scope: Scope | None = None
    """Made from a template: where its variables are (the use's namespace and names)."""
    use: TemplateUse | None = None
    """Made from a template: the use it comes from."""

    def __post_init__(self) -> None:
        if not self.process:
            object.__setattr__(self, "process", self.name)

    def place(self, key: str) -> Location:
        """The position of one of its keys (``inputs.companies``), else of the entry."""
        return self.places.get(key) or self.where


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
    cache: bool | None = None
    """``cache:`` of the flow; ``None``: ``confs.cache``."""


Expand = Callable[[list[PathKey], str, Mapping[str, Any]], list["StepConfig"]]
"""``(keys, step name, the use) -> the steps`` a template's use stands for."""


def read_flow(
    doc: YamlDocument,
    name: str,
    body: Mapping[str, Any],
    problems: list[Problem],
    expand: Expand | None = None,
) -> FlowConfig:
    """A flow, its steps read; a step that uses a template (``{use: NAME}``) expanded in
    place by ``expand``."""
    keys: list[PathKey] = ["flows", name]
    tags = body.get("tags")
    steps: list[StepConfig] = []
    for step, entries in mapping(body.get("steps")).items():
        here = [*keys, "steps", step]
        if (
            expand is not None
            and isinstance(entries, Mapping)
            and isinstance(entries.get("use"), str)
        ):
            steps.extend(expand(here, str(step), entries))
        else:
            steps.append(read_step(doc, here, step, entries, problems))
    return FlowConfig(
        name=name,
        tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
        params=frozen(body.get("params")),
        steps=tuple(steps),
        where=locate(doc, keys, at_key=True),
        cache=body.get("cache") if isinstance(body.get("cache"), bool) else None,
    )


def read_step(
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
            what = f"task {entry.name!r}" if value is None else f"task {task!r}"
            problems.append(
                entry.where.problem(
                    f"{what} appears twice in step {name!r} (first at line {first.where.line}); "
                    "task names are unique in a step: to run one process twice, give each "
                    f"entry its own name and the process: '{entry.name}_2: {{process: "
                    f"{entry.process}}}' (or iter_param, to vary one param)"
                )
            )
            break
    return StepConfig(name, _read_once(entries), locate(doc, keys, at_key=True))


def _read_once(entries: list[ProcessEntry]) -> tuple[ProcessEntry, ...]:
    """The entries, those named by a dotted process name (``flights.write_report``: a
    package's prefix) naming their task by its last part (``write_report``) where that stays
    unique in the step, so that ``flights.publish.write_report`` reads once. The process
    run is unchanged; an entry named explicitly (``process:``) keeps its name."""
    short = [
        e.name.rpartition(".")[2] if e.process == e.name and "." in e.name else e.name
        for e in entries
    ]
    count = Counter(short)
    return tuple(
        replace(e, name=s) if s != e.name and count[s] == 1 else e
        for e, s in zip(entries, short, strict=True)
    )


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
        message = (
            f"the options of process {name!r} must be a mapping "
            f"({', '.join(_schema.PROCESS_OPTIONS)}) or nothing, not {type(options).__name__}"
        )
        first, _, rest = str(options).partition(" ") if isinstance(options, str) else ("", "", "")
        if first in _schema.PROCESS_OPTIONS and rest.strip():
            message += f"; missing ':' after {first!r} ({first}: {rest.strip()})?"
        problems.append(doc.problem(keys, message))
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
    places: dict[str, Location] = {}
    for key in ("process", "inputs", "outputs", "pool", "pools", "map", "map_as", "max_map"):
        if key in options:
            places[key] = locate(doc, [*keys, key], at_key=True)
    inputs, reads = _inputs(doc, keys, options.get("inputs"), places, problems)
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
        process=str(options.get("process") or ""),
        inputs=inputs,
        reads=reads,
        outputs=_outputs(doc, keys, options.get("outputs"), problems),
        places=places,
        cache=options.get("cache"),
        pools=_pools(doc, keys, options, problems),
        map=_map(doc, keys, options, problems),
    )


def _pools(
    doc: YamlDocument, keys: list[PathKey], options: Mapping[str, Any], problems: list[Problem]
) -> Mapping[str, int]:
    """``pool: NAME`` (one unit) or ``pools: {NAME: N}``; whether the pools exist is
    checked with ``confs.pools`` (:func:`check_pools`)."""
    if "pool" in options and "pools" in options:
        problems.append(
            doc.problem(
                [*keys, "pools"],
                "give pool (one unit of one pool) or pools ({NAME: units, …}), not both",
                at_key=True,
            )
        )
        return EMPTY
    if options.get("pool") is not None:
        return MappingProxyType({str(options["pool"]): 1})
    return frozen(options.get("pools"))


def _map(
    doc: YamlDocument, keys: list[PathKey], options: Mapping[str, Any], problems: list[Problem]
) -> MapSpec | None:
    variable = options.get("map")
    if variable is None:
        for key in ("map_as", "max_map"):
            if key in options:
                problems.append(
                    doc.problem(
                        [*keys, key],
                        f"{key} goes with map: (map: VARIABLE runs one task per element of it)",
                        at_key=True,
                    )
                )
        return None
    if not _variable(doc, [*keys, "map"], variable, problems):
        return None
    if options.get("iter_param") is not None:
        problems.append(
            doc.problem(
                [*keys, "map"],
                "give map or iter_param, not both: map fans out over a variable's elements "
                "at run time, iter_param over values written here",
                at_key=True,
            )
        )
        return None
    return MapSpec(
        variable,
        str(options.get("map_as") or "item"),
        int(options.get("max_map") or MAX_MAP),
    )


def _variable(doc: YamlDocument, keys: list[PathKey], value: Any, problems: list[Problem]) -> bool:
    """Whether ``value`` is a valid variable name; a problem where it is not."""
    if isinstance(value, str) and _VARIABLE.match(value) and value not in (".", ".."):
        return True
    problems.append(
        doc.problem(
            keys,
            f"invalid variable name {value!r}: use letters, digits, '_', '.' and '-' "
            "(no path separators, not '.' or '..')",
        )
    )
    return False


def _inputs(
    doc: YamlDocument,
    keys: list[PathKey],
    node: Any,
    places: dict[str, Location],
    problems: list[Problem],
) -> tuple[Mapping[str, Source], tuple[str, ...]]:
    """``inputs:`` as a mapping (parameter -> what it gets) or a list (variables read
    through ``pipe.vars``)."""
    here = [*keys, "inputs"]
    if isinstance(node, list):
        names = []
        for i, item in enumerate(node):
            if _variable(doc, [*here, i], item, problems):
                if item in names:
                    problems.append(doc.problem([*here, i], f"variable {item!r} is listed twice"))
                names.append(item)
        return EMPTY, tuple(names)
    mapped: dict[str, Source] = {}
    for param, value in mapping(node).items():
        places[f"inputs.{param}"] = locate(doc, [*here, param], at_key=True)
        if not isinstance(param, str) or not param.isidentifier():
            problems.append(
                doc.problem(
                    [*here, param],
                    f"{param!r} is not a parameter name: inputs maps a parameter of the "
                    "process to the variable it gets ({parameter: variable})",
                    at_key=True,
                )
            )
            continue
        source = _source(doc, [*here, param], value, problems)
        if source is not None:
            mapped[param] = source
    return mapped, ()


def _source(
    doc: YamlDocument, keys: list[PathKey], value: Any, problems: list[Problem]
) -> Source | None:
    """What ``inputs`` maps one parameter to: ``params`` or ``params.KEY…``, a variable,
    a list of variables or a mapping name -> variable (SPEC 20)."""
    if isinstance(value, str) and (value == PARAMS or value.startswith(PARAMS + ".")):
        path = tuple(value.split("."))[1:]
        if all(path):
            return FromParams(path)
        problems.append(
            doc.problem(keys, f"{value!r} is not a key path of params: write params.KEY.SUBKEY")
        )
        return None
    if isinstance(value, list):
        names = [v for i, v in enumerate(value) if _variable(doc, [*keys, i], v, problems)]
        return Gathered(tuple(names)) if len(names) == len(value) else None
    if isinstance(value, Mapping):
        good = True
        for key, name in value.items():
            if not isinstance(key, str) or not key.isidentifier():
                problems.append(
                    doc.problem(
                        [*keys, key],
                        f"{key!r} is not a keyword name (letters, digits and '_', not first "
                        "a digit)",
                        at_key=True,
                    )
                )
                good = False
            elif not _variable(doc, [*keys, key], name, problems):
                good = False
        return Gathered(tuple(value.values()), tuple(value)) if good else None
    return value if _variable(doc, keys, value, problems) else None


def _outputs(
    doc: YamlDocument, keys: list[PathKey], node: Any, problems: list[Problem]
) -> Outputs | None:
    """``outputs:`` a name, a list of names (a tuple unpacked), or a mapping name -> key
    of a returned mapping."""
    here = [*keys, "outputs"]
    if node is None:
        return None
    if isinstance(node, str):
        return Outputs("one", (node,)) if _variable(doc, here, node, problems) else None
    mapped = isinstance(node, Mapping)
    items = (
        [([*here, name], name, key) for name, key in node.items()]
        if mapped
        else [([*here, i], name, None) for i, name in enumerate(node)]
    )
    names: list[str] = []
    out_keys: list[Any] = []
    for where, name, key in items:
        if not _variable(doc, where, name, problems):
            continue
        if name in names:
            problems.append(doc.problem(where, f"output {name!r} is declared twice"))
            continue
        if mapped and not isinstance(key, (str, int)):
            problems.append(
                doc.problem(where, f"the key of output {name!r} must be a string or a number")
            )
            continue
        names.append(name)
        out_keys.append(key)
    if not items:
        problems.append(doc.problem(here, "outputs lists no variable"))
    if not names:
        return None
    return (
        Outputs("mapping", tuple(names), tuple(out_keys))
        if mapped
        else Outputs("sequence", tuple(names))
    )
