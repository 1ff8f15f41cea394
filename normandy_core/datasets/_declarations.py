"""Dataset declarations checked (SPEC 16), without I/O: each one's type exists (*did
you mean*, among the installed types) and can be imported, the declaration has the keys
its type requires and no key it does not take, ``versioned`` only where the type can be,
``credentials`` an entry of the env's credentials."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from normandy_core.config import COMMON_KEYS, DatasetSpec
from normandy_core.datasets._base import Dataset
from normandy_core.datasets._runtime import dataset_call
from normandy_core.datasets._types import PROJECT, DatasetType, find_type, load_type
from normandy_core.errors import DatasetError, Problem


@dataclass(frozen=True)
class Declared:
    """A declaration whose type is known: its spec, type and class."""

    spec: DatasetSpec
    dataset_type: DatasetType
    cls: type[Dataset]


def check_declarations(
    specs: Mapping[str, DatasetSpec],
    root: str,
    credentials: Mapping[str, object] | None = None,
) -> tuple[dict[str, Declared], list[Problem]]:
    """The declarations whose type is known, and every problem of them. ``credentials``:
    the env's (``None``: not checked, the env is not)."""
    declared: dict[str, Declared] = {}
    problems: list[Problem] = []
    for spec in specs.values():
        found = find_type(spec.type)
        if not isinstance(found, str) and found.source == PROJECT:
            from normandy_core.plugins import add_project_paths

            add_project_paths(Path(root))  # a class of the project's own
        if isinstance(found, str):
            problems.append(spec.place("type").problem(found))
            continue
        try:
            cls = load_type(found)
        except DatasetError as exc:
            problems.append(spec.place("type").problem(str(exc)))
            continue
        problems += _declaration(spec, found, cls, root, credentials)
        declared[spec.name] = Declared(spec, found, cls)
    return declared, problems


def _declaration(
    spec: DatasetSpec,
    dataset_type: DatasetType,
    cls: type[Dataset],
    root: str,
    credentials: Mapping[str, object] | None,
) -> list[Problem]:
    problems = []
    kind = f"a {spec.type} dataset"
    for key in spec.options:
        if key not in cls.options:
            allowed = [*COMMON_KEYS, *cls.options]
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                spec.place(key).problem(
                    f"unknown key {key!r} for {kind}; {hint}its keys: {', '.join(allowed)}"
                )
            )
    config = dataset_call(spec, dataset_type, root, credentials).config
    if config.credentials is None and spec.credentials:  # the env's credentials not read
        config = replace(config, credentials=spec.credentials)
    for key, message in cls.check(config):
        problems.append(spec.place(key).problem(f"{kind}: {message}"))
    if spec.versioned and not cls.versionable:
        problems.append(
            spec.place("versioned").problem(f"{kind} cannot be versioned (only files can)")
        )
    if spec.credentials and credentials is not None and spec.credentials not in credentials:
        names = ", ".join(map(str, credentials)) or "none"
        problems.append(
            spec.place("credentials").problem(
                f"the env's credentials have no entry {spec.credentials!r} (its entries: "
                f"{names}); add it to the env's credentials file, or fix the name"
            )
        )
    return problems
