"""``confs.datasets`` (SPEC 16): files and tables known by name, each overridable key by
key in an env (``confs.envs.<env>.datasets.<name>``), read with the position of every key.

The declarations are plain data here (:class:`DatasetSpec`); whether their type exists
and what keys it takes is checked where the types are known
(:mod:`normandy_core.datasets._checks`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from normandy_core.binding import VARIABLE_PATTERN
from normandy_core.config._nodes import EMPTY, Location, locate, mapping, plain
from normandy_core.config._yaml import PathKey, YamlDocument
from normandy_core.errors import Problem

COMMON_KEYS = (
    "type",
    "path",
    "load_args",
    "save_args",
    "fs_args",
    "versioned",
    "credentials",
)
"""The keys every dataset declaration may have; a type adds its own (``Dataset.options``)."""
_FILE = "pipeline/pipeline_conf.yml"
_NAME = re.compile(VARIABLE_PATTERN + r"\Z")


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset as declared, with the env's overrides applied (``env``: the env whose
    ``datasets`` changed it, if any). ``options``: the keys of its type's own."""

    name: str
    type: str
    path: str | None = None
    load_args: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    save_args: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    fs_args: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    versioned: bool = False
    credentials: str | None = None
    """The name of an entry of the env's credentials file."""
    options: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    where: Location = field(default_factory=lambda: Location(_FILE, 1, 1, "confs.datasets"))
    places: Mapping[str, Location] = field(default_factory=lambda: EMPTY)
    """Key -> where its value is written (in ``confs.datasets`` or the env's override)."""
    env: str | None = None

    def place(self, key: str) -> Location:
        return self.places.get(key) or self.where


def dataset_locations(doc: YamlDocument, confs: Mapping[str, Any]) -> dict[str, Location]:
    """Positions of ``confs.datasets.<name>[.<key>]`` and of every env's
    ``datasets.<name>[.<key>]`` (``confs.envs.<env>.datasets…``), for messages."""
    found: dict[str, Location] = {}

    def walk(keys: list[PathKey], node: Any) -> None:
        found[".".join(map(str, keys))] = locate(doc, keys, at_key=True)
        for name, body in mapping(node).items():
            found[".".join(map(str, [*keys, name]))] = locate(doc, [*keys, name], at_key=True)
            for key in mapping(body):
                found[".".join(map(str, [*keys, name, key]))] = locate(doc, [*keys, name, key])

    if "datasets" in confs:
        walk(["confs", "datasets"], confs.get("datasets"))
    for env, body in mapping(confs.get("envs")).items():
        if isinstance(body, Mapping) and "datasets" in body:
            walk(["confs", "envs", env, "datasets"], body.get("datasets"))
    return found


def override_problems(doc: YamlDocument, confs: Mapping[str, Any]) -> list[Problem]:
    """An env's ``datasets`` that is not a mapping of declared datasets to mappings."""
    declared = list(mapping(confs.get("datasets")))
    problems: list[Problem] = []
    for env, body in mapping(confs.get("envs")).items():
        if not isinstance(body, Mapping) or "datasets" not in body:
            continue
        keys: list[PathKey] = ["confs", "envs", env, "datasets"]
        overrides = body.get("datasets")
        if not isinstance(overrides, Mapping):
            problems.append(
                doc.problem(keys, "must be a mapping: dataset name -> the keys this env changes")
            )
            continue
        for name, keys_changed in overrides.items():
            if name not in declared:
                close = difflib.get_close_matches(str(name), declared, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                problems.append(
                    doc.problem(
                        [*keys, name],
                        f"env {env!r} changes the dataset {name!r}, which confs.datasets does "
                        f"not declare; {hint}declare it there (an env changes its keys)",
                        at_key=True,
                    )
                )
            elif not isinstance(keys_changed, Mapping):
                problems.append(
                    doc.problem(
                        [*keys, name],
                        "must be a mapping of the keys this env changes (path: …)",
                    )
                )
    return problems


def dataset_specs(
    declared: Mapping[str, Any],
    locations: Mapping[str, Location],
    env: str | None = None,
    settings: Mapping[str, Any] | None = None,
    default: Location | None = None,
) -> dict[str, DatasetSpec]:
    """The datasets of ``declared`` (``confs.datasets``, interpolated) with the
    overrides of ``env`` (its ``settings``, interpolated) applied key by key. Malformed
    declarations are left to the schema's problems: what can be read is read."""
    overrides = mapping((settings or {}).get("datasets")) if env is not None else {}
    specs: dict[str, DatasetSpec] = {}
    for name, body in mapping(declared).items():
        if not (isinstance(name, str) and _NAME.match(name) and isinstance(body, Mapping)):
            continue
        if not isinstance(body.get("type"), str) or not body["type"]:
            continue  # the schema's problem
        places = {str(key): locations.get(f"confs.datasets.{name}.{key}") for key in body}
        merged = dict(plain(body))
        changed = mapping(overrides.get(name))
        for key, value in changed.items():
            merged[str(key)] = plain(value)
            places[str(key)] = locations.get(f"confs.envs.{env}.datasets.{name}.{key}")
        where = locations.get(f"confs.datasets.{name}") or default
        specs[name] = _spec(name, merged, where, places, env if changed else None)
    return specs


def _spec(
    name: str,
    body: Mapping[str, Any],
    where: Location | None,
    places: Mapping[str, Location | None],
    env: str | None,
) -> DatasetSpec:
    def args(key: str) -> Mapping[str, Any]:
        value = body.get(key)
        return MappingProxyType(dict(value)) if isinstance(value, Mapping) else EMPTY

    path = body.get("path")
    credentials = body.get("credentials")
    return DatasetSpec(
        name=name,
        type=str(body.get("type") or ""),
        path=str(path) if isinstance(path, str) and path else None,
        load_args=args("load_args"),
        save_args=args("save_args"),
        fs_args=args("fs_args"),
        versioned=body.get("versioned") is True,
        credentials=credentials if isinstance(credentials, str) and credentials else None,
        options=MappingProxyType({k: v for k, v in body.items() if k not in COMMON_KEYS}),
        where=where or Location(_FILE, 1, 1, f"confs.datasets.{name}"),
        places=MappingProxyType({k: v for k, v in places.items() if v is not None}),
        env=env,
    )
