"""The configuration as immutable data, read defensively from a validated YAML tree."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from normandy_core.config import _schema
from normandy_core.config._env import interpolate_tree
from normandy_core.config._yaml import PathKey, YamlDocument, dotted, load_yaml
from normandy_core.errors import Problem, display_path
from normandy_core.registry import NAME_PATTERN, TARGET_PATTERN

CONF_FILE = Path("pipeline") / "pipeline_conf.yml"
_PROCESS_NAME = re.compile(NAME_PATTERN + r"\Z")
_TARGET = re.compile(TARGET_PATTERN + r"\Z")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Location:
    """Where something is written: a file, 1-based line and column, and its key path."""

    file: str
    line: int
    column: int
    path: str

    def problem(self, message: str) -> Problem:
        return Problem(self.file, self.line, self.column, self.path, message)


def locate(doc: YamlDocument, keys: list[PathKey], *, at_key: bool = False) -> Location:
    problem = doc.problem(keys, "", at_key=at_key)
    return Location(problem.file, problem.line, problem.column, problem.path)


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
    params: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
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


@dataclass(frozen=True)
class EnvConfig:
    """An environment as written: settings are interpolated only when the env is used."""

    name: str
    settings: Mapping[str, Any]
    credentials: str | None
    where: Location


@dataclass(frozen=True)
class ProjectConfig:
    """A project's ``pipeline/pipeline_conf.yml``."""

    root: Path
    file: Path
    envs: Mapping[str, EnvConfig]
    flows: Mapping[str, FlowConfig]
    workers: int | None = None
    log_level: str = "info"
    plugins: tuple[str, ...] = ()
    processes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """``confs.processes``: the project's own processes, name -> ``"module:attribute"``."""
    executor: str = "local"
    default_env: str | None = None
    store: str | None = None
    """``confs.store``: where variables live (a path or a URL); ``None``: ``.normandy/``."""
    confs: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    locations: Mapping[str, Location] = field(default_factory=dict)
    """Positions of ``confs`` keys (``"confs.envs"``, ``"confs.plugins[0]"``…) for messages."""
    engine_sections: Mapping[str, Location] = field(default_factory=dict)
    """``confs`` mappings the schema does not know (``confs.ray``): the settings of an
    executor added by a plugin, allowed once the plugins show that executor exists."""

    def where(self, path: str) -> Location:
        """The position of a ``confs`` key, or of the file's start."""
        return self.locations.get(path) or Location(display_path(self.file), 1, 1, path)

    def executor_settings(self, name: str) -> Mapping[str, Any]:
        """An engine's own settings, ``confs.<name>`` (``confs.dask``), empty if none."""
        settings = self.confs.get(name)
        return MappingProxyType(dict(settings)) if isinstance(settings, Mapping) else _EMPTY


def read_config(
    root: Path, environ: Mapping[str, str] | None = None
) -> tuple[ProjectConfig | None, list[Problem]]:
    """Read ``root/pipeline/pipeline_conf.yml``: the configuration (``None`` when the file
    cannot be parsed) and every problem found in it."""
    environ = os.environ if environ is None else environ
    file = root / CONF_FILE
    doc, problems = load_yaml(file)
    if doc is None or (doc.data is None and problems):  # not YAML, or refused whole
        return None, problems
    data = doc.data
    if not isinstance(data, Mapping):
        problems.append(doc.problem([], "the file must be a mapping with the keys confs and flows"))
        return None, problems

    def bad_reference(keys: list[PathKey], message: str) -> None:
        problems.append(doc.problem(keys, message))

    raw_confs = data.get("confs")
    confs: dict[str, Any] = {}
    if isinstance(raw_confs, Mapping):
        for key, value in raw_confs.items():
            confs[key] = (
                value
                if key == "envs"
                else interpolate_tree(value, environ, bad_reference, ["confs", key])
            )
        for key in ("workers", "threads"):
            if isinstance(confs.get(key), str) and confs[key].strip().isdigit():
                confs[key] = int(confs[key])
    tree = dict(data)
    engine_sections: dict[str, Location] = {}
    if isinstance(raw_confs, Mapping):
        tree["confs"] = {k: v for k, v in confs.items() if not _engine_section(k, v)}
        engine_sections = {
            k: locate(doc, ["confs", k], at_key=True)
            for k, v in confs.items()
            if _engine_section(k, v)
        }
    tree = _sortable_keys(doc, tree, {"schema": _schema.FILE_SCHEMA}, [], problems)
    problems.extend(_schema.check(doc, tree, _schema.FILE_SCHEMA))

    flows = {
        name: _read_flow(doc, str(name), body, problems)
        for name, body in _mapping(data.get("flows")).items()
        if isinstance(body, Mapping)
    }
    envs = {
        str(name): EnvConfig(
            str(name),
            MappingProxyType(dict(_mapping(body))),
            _mapping(body).get("credentials") or None,
            locate(doc, ["confs", "envs", name], at_key=True),
        )
        for name, body in _mapping(confs.get("envs")).items()
    }
    if "workers" in confs and "threads" in confs:
        problems.append(
            doc.problem(
                ["confs", "threads"],
                "give workers or threads (its old name), not both",
                at_key=True,
            )
        )
    workers = confs.get("workers", confs.get("threads"))
    store = confs.get("store")
    default_env = confs.get("default_env")
    if isinstance(default_env, str) and envs and default_env not in envs:
        problems.append(
            doc.problem(
                ["confs", "default_env"],
                f"unknown env {default_env!r}; the envs are: {', '.join(envs)}",
            )
        )
    locations = {
        "confs.envs": locate(doc, ["confs", "envs"], at_key=True),
        "confs.executor": locate(doc, ["confs", "executor"]),
        "confs.store": locate(doc, ["confs", "store"]),
        "confs.dask.address": locate(doc, ["confs", "dask", "address"]),
    }
    for name, env in envs.items():
        for keys in _interpolated(env.settings, ["confs", "envs", name]):
            locations[dotted(keys)] = locate(doc, keys)
        if env.credentials:
            key = f"confs.envs.{name}.credentials"
            locations[key] = locate(doc, ["confs", "envs", name, "credentials"])
    raw_plugins = confs.get("plugins")
    plugins: list[Any] = raw_plugins if isinstance(raw_plugins, list) else []
    for i in range(len(plugins)):
        locations[f"confs.plugins[{i}]"] = locate(doc, ["confs", "plugins", i])
    processes = _processes(confs.get("processes"))
    for name in processes:
        locations[f"confs.processes.{name}"] = locate(doc, ["confs", "processes", name])
    config = ProjectConfig(
        root=root,
        file=file,
        envs=MappingProxyType(envs),
        flows=MappingProxyType(flows),
        workers=workers if isinstance(workers, int) else None,
        log_level=str(confs.get("log_level") or "info"),
        plugins=tuple(str(p) for p in plugins),
        processes=MappingProxyType(processes),
        executor=str(confs.get("executor") or "local"),
        default_env=default_env if isinstance(default_env, str) else None,
        store=store if isinstance(store, str) and store else None,
        confs=MappingProxyType({k: v for k, v in confs.items() if k != "envs"}),
        locations=MappingProxyType(locations),
        engine_sections=MappingProxyType(engine_sections),
    )
    return config, problems


def _processes(node: Any) -> dict[str, str]:
    """The well-formed entries of ``confs.processes`` (the schema reports the others)."""
    return {
        str(name): str(target)
        for name, target in _mapping(node).items()
        if isinstance(name, str)
        and _PROCESS_NAME.match(name)
        and isinstance(target, str)
        and _TARGET.match(target)
    }


def _sortable_keys(
    doc: YamlDocument,
    node: Any,
    rules: Mapping[str, Any],
    keys: list[PathKey],
    problems: list[Problem],
) -> Any:
    """``node`` without the keys the schema checks that are neither text nor integers (a
    null, a float, a date): each is a problem here, since cerberus cannot even sort its
    errors about such a key beside a text one (a ``TypeError``)."""
    if not isinstance(node, Mapping):
        return node
    checked = ("schema" in rules and not rules.get("allow_unknown")) or "keysrules" in rules
    out = {}
    for key, value in node.items():
        if checked and not isinstance(key, (str, int)):
            what = "null" if key is None else f"{type(key).__name__} {key!r}"
            message = f"a key here must be a name, not {what}; quote it or rename it"
            problems.append(doc.problem([*keys, key], message, at_key=True))
            continue
        below = rules["schema"].get(key) if "schema" in rules else rules.get("valuesrules")
        out[key] = _sortable_keys(doc, value, below, [*keys, key], problems) if below else value
    return out


def _engine_section(key: Any, value: Any) -> bool:
    """A mapping under a ``confs`` key the schema does not know: maybe an engine's."""
    return (
        isinstance(key, str)
        and key not in _schema.CONFS_SCHEMA
        and (value is None or isinstance(value, Mapping))
    )


def _read_flow(
    doc: YamlDocument, name: str, body: Mapping[str, Any], problems: list[Problem]
) -> FlowConfig:
    keys: list[PathKey] = ["flows", name]
    tags = body.get("tags")
    steps = [
        _read_step(doc, [*keys, "steps", step], step, entries, problems)
        for step, entries in _mapping(body.get("steps")).items()
    ]
    return FlowConfig(
        name=name,
        tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
        params=_frozen(body.get("params")),
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
    options = _sortable_keys(doc, options, {"schema": _schema.PROCESS_OPTIONS}, keys, problems)
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
        params=_frozen(options.get("params")),
        avoid_tags=tuple(options.get("avoid_tags") or ()),
        error_tolerance=bool(options.get("error_tolerance", False)),
        iter_param=iter_param,
        retries=int(options.get("retries", 0)),
        retry_delay=float(options.get("retry_delay", 0)),
        timeout=float(timeout) if timeout is not None else None,
    )


def _interpolated(node: Any, keys: list[PathKey]) -> Iterator[list[PathKey]]:
    """The key paths of the strings under ``node`` that hold ``${env:…}``."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _interpolated(value, [*keys, key])
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _interpolated(value, [*keys, i])
    elif isinstance(node, str) and "${env:" in node:
        yield keys


def _mapping(node: Any) -> Mapping[Any, Any]:
    return node if isinstance(node, Mapping) else {}


def _frozen(node: Any) -> Mapping[str, Any]:
    """A read-only plain copy of a params mapping (round-trip YAML types made plain)."""
    return MappingProxyType(plain(node)) if isinstance(node, Mapping) else _EMPTY


def plain(node: Any) -> Any:
    """Round-trip YAML containers and scalars as plain ``dict``/``list``/``str``/``int``…"""
    if isinstance(node, Mapping):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    for kind in (str, int, float):
        if isinstance(node, kind):
            return kind(node)
    return node
