"""The configuration as immutable data, read defensively from a validated YAML tree."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from normandy_core.config import _schema
from normandy_core.config._datasets import (
    DatasetSpec,
    dataset_locations,
    dataset_specs,
    override_problems,
)
from normandy_core.config._env import interpolate_tree
from normandy_core.config._flows import FlowConfig, StepConfig, read_flow
from normandy_core.config._nodes import (
    EMPTY,
    Location,
    frozen,
    locate,
    mapping,
    plain,
    sortable_keys,
)
from normandy_core.config._notify import read_notify
from normandy_core.config._templates import expand_use, read_templates
from normandy_core.config._yaml import PathKey, dotted, load_yaml
from normandy_core.errors import Problem, display_path
from normandy_core.registry import NAME_PATTERN, TARGET_PATTERN
from normandy_core.roots import CONF_FILE

_PROCESS_NAME = re.compile(NAME_PATTERN + r"\Z")
_TARGET = re.compile(TARGET_PATTERN + r"\Z")

__all__ = ["CONF_FILE", "EnvConfig", "ProjectConfig", "plain", "read_config"]


@dataclass(frozen=True)
class EnvConfig:
    """An environment as written: settings are interpolated only when the env is used."""

    name: str
    settings: Mapping[str, Any]
    """Its settings (``pipe.confs``): every key of ``confs.envs.<env>`` but ``params``."""
    credentials: str | None
    where: Location
    params: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    """``confs.envs.<env>.params``: over the params of every entry of every flow, key by
    key at any depth, when the env is used (SPEC 20)."""


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
    processes: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """``confs.processes``: the project's own processes, name -> ``"module:attribute"``."""
    executor: str = "local"
    default_env: str | None = None
    store: str | None = None
    """``confs.store``: where variables live (a path or a URL); ``None``: ``.normandy/``."""
    cache: bool = False
    """``confs.cache``: whether tasks reuse earlier successes (a flow or an entry may say
    otherwise; SPEC 13)."""
    keep_runs: int | None = None
    """``confs.keep_runs``: ``normandy gc --keep N`` after every run; ``0`` keeps every
    run; not given (``None``): the last 20 (:data:`normandy_core.retention.DEFAULT_KEEP`)."""
    preload: bool = True
    """``confs.preload``: whether the ``local`` executor imports the run's process modules
    once, in the process its workers are forked from, before the first task."""
    pools: Mapping[str, int] = field(default_factory=lambda: EMPTY)
    """``confs.pools``: pool name -> its units (SPEC 19)."""
    schedule: str = "steps"
    """``confs.schedule``: ``steps`` (a step starts once the one before has ended) or
    ``dataflow`` (a task starts once what it reads is written)."""
    confs: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    locations: Mapping[str, Location] = field(default_factory=dict)
    """Positions of ``confs`` keys (``"confs.envs"``, ``"confs.plugins[0]"``…) for messages."""
    engine_sections: Mapping[str, Location] = field(default_factory=dict)
    """``confs`` mappings the schema does not know (``confs.ray``): the settings of an
    executor added by a plugin, allowed once the plugins show that executor exists."""
    datasets: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    """``confs.datasets`` as written (interpolated): name -> declaration (SPEC 16)."""

    def where(self, path: str) -> Location:
        """The position of a ``confs`` key, or of the file's start."""
        return self.locations.get(path) or Location(display_path(self.file), 1, 1, path)

    def dataset_specs(
        self, env: str | None = None, settings: Mapping[str, Any] | None = None
    ) -> dict[str, DatasetSpec]:
        """The datasets, with the overrides of ``env`` applied (``settings``: its settings,
        interpolated; see :func:`~normandy_core.config.env_settings`)."""
        return dataset_specs(self.datasets, self.locations, env, settings, self.where("confs"))

    def executor_settings(self, name: str) -> Mapping[str, Any]:
        """An engine's own settings, ``confs.<name>`` (``confs.dask``), empty if none."""
        settings = self.confs.get(name)
        return MappingProxyType(dict(settings)) if isinstance(settings, Mapping) else EMPTY


def read_config(
    root: Path, environ: Mapping[str, str] | None = None
) -> tuple[ProjectConfig | None, list[Problem]]:
    """Read ``root/pipeline/pipeline_conf.yml``: the configuration (``None`` when the file
    cannot be parsed) and every problem found in it."""
    environ = os.environ if environ is None else environ
    file = root / CONF_FILE
    _schema.remember_passes(root / ".normandy")  # the state folder, once a run made it
    try:
        return _read_config(root, file, environ)
    finally:
        _schema.save_passes()


def save_checked() -> None:
    """Keep what the last :func:`read_config` checked and found valid in the project's
    state folder, made since by a run (a project's first): the next command does not
    check it again."""
    _schema.save_passes()


def _read_config(
    root: Path, file: Path, environ: Mapping[str, str]
) -> tuple[ProjectConfig | None, list[Problem]]:
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
    tree = sortable_keys(doc, tree, {"schema": _schema.FILE_SCHEMA}, [], problems)
    problems.extend(_schema.check(doc, tree, _schema.FILE_SCHEMA))

    templates = read_templates(doc, data.get("templates"), problems)

    def expand(keys: list[PathKey], step: str, use: Mapping[str, Any]) -> list[StepConfig]:
        return expand_use(doc, keys, step, use, templates, problems)

    flows = {
        name: read_flow(doc, str(name), body, problems, expand)
        for name, body in mapping(data.get("flows")).items()
        if isinstance(body, Mapping)
    }
    envs = {
        str(name): EnvConfig(
            str(name),
            MappingProxyType({k: v for k, v in mapping(body).items() if k != "params"}),
            mapping(body).get("credentials") or None,
            locate(doc, ["confs", "envs", name], at_key=True),
            frozen(mapping(body).get("params")),
        )
        for name, body in mapping(confs.get("envs")).items()
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
    if isinstance(raw_confs, Mapping):
        locations.update(dataset_locations(doc, raw_confs))
        problems.extend(override_problems(doc, raw_confs))
    raw_plugins = confs.get("plugins")
    plugins: list[Any] = raw_plugins if isinstance(raw_plugins, list) else []
    for i in range(len(plugins)):
        locations[f"confs.plugins[{i}]"] = locate(doc, ["confs", "plugins", i])
    pools = _pools(confs.get("pools"))
    problems.extend(_check_pools(flows.values(), pools))
    notify_locations, notify_problems = read_notify(doc, confs.get("notify"))
    locations.update(notify_locations)
    problems.extend(notify_problems)
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
        cache=confs.get("cache") is True,
        keep_runs=confs.get("keep_runs") if isinstance(confs.get("keep_runs"), int) else None,
        preload=confs.get("preload") is not False,
        pools=MappingProxyType(pools),
        schedule=str(confs.get("schedule") or "steps"),
        confs=MappingProxyType({k: v for k, v in confs.items() if k != "envs"}),
        locations=MappingProxyType(locations),
        engine_sections=MappingProxyType(engine_sections),
        datasets=MappingProxyType(dict(mapping(confs.get("datasets")))),
    )
    return config, problems


def _processes(node: Any) -> dict[str, str]:
    """The well-formed entries of ``confs.processes`` (the schema reports the others)."""
    return {
        str(name): str(target)
        for name, target in mapping(node).items()
        if isinstance(name, str)
        and _PROCESS_NAME.match(name)
        and isinstance(target, str)
        and _TARGET.match(target)
    }


def _pools(node: Any) -> dict[str, int]:
    """The well-formed entries of ``confs.pools`` (the schema reports the others)."""
    return {
        str(name): units
        for name, units in mapping(node).items()
        if isinstance(units, int) and not isinstance(units, bool) and units >= 1
    }


def _check_pools(flows: Iterable[FlowConfig], pools: Mapping[str, int]) -> list[Problem]:
    """Each entry's pools exist, and it asks no more units than a pool has (it could
    never start)."""
    problems = []
    for flow in flows:
        for step in flow.steps:
            for entry in step.entries:
                for name, units in entry.pools.items():
                    where = entry.place("pool" if "pool" in entry.places else "pools")
                    if name not in pools:
                        close = difflib.get_close_matches(name, list(pools), n=1)
                        hint = f"did you mean {close[0]!r}? " if close else ""
                        known = ", ".join(pools) if pools else "none (confs.pools is empty)"
                        problems.append(
                            where.problem(
                                f"unknown pool {name!r}; {hint}the pools of confs.pools: "
                                f"{known}; add it there ({name}: UNITS) or fix the name"
                            )
                        )
                    elif units > pools[name]:
                        problems.append(
                            where.problem(
                                f"the task asks {units} units of pool {name!r}, which has "
                                f"{pools[name]} (confs.pools): it could never start; ask at "
                                f"most {pools[name]}, or give the pool more units"
                            )
                        )
    return problems


def _engine_section(key: Any, value: Any) -> bool:
    """A mapping under a ``confs`` key the schema does not know: maybe an engine's."""
    return (
        isinstance(key, str)
        and key not in _schema.CONFS_SCHEMA
        and (value is None or isinstance(value, Mapping))
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
