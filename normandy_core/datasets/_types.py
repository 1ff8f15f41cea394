"""Dataset types by name: the entry points of the group ``normandy.datasets`` (listed
without importing anything), or a ``module:Class`` of the project itself; a type's class
is imported only where it is used."""

from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass

from normandy_core.datasets._base import Dataset
from normandy_core.errors import DatasetError

GROUP = "normandy.datasets"
"""The entry-point group of dataset types: ``csv = normandy_io.datasets:CSVDataset``."""

PROJECT = "project"
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*\Z")


@dataclass(frozen=True)
class DatasetType:
    """A dataset type: its ``name`` (as written after ``type:``), its class's
    ``target`` (``module:Class``) and ``source`` (the distribution offering it, or
    ``project``)."""

    name: str
    target: str
    source: str


@functools.lru_cache(maxsize=1)
def installed_types() -> dict[str, tuple[DatasetType, ...]]:
    """Every installed type, by name (a name offered by two distributions with different
    classes has two: a clash, an error where it is used)."""
    from normandy_core.plugins import _entry_points, dist_name  # not in the workers

    found: dict[str, dict[str, DatasetType]] = {}
    for ep in _entry_points(GROUP):
        dist = dist_name(ep)
        found.setdefault(ep.name, {}).setdefault(ep.value, DatasetType(ep.name, ep.value, dist))
    return {name: tuple(by_target.values()) for name, by_target in sorted(found.items())}


def find_type(name: str) -> DatasetType | str:
    """The type ``name`` stands for, else why not (unknown, with a *did you mean* among
    the installed types; or offered twice). ``module:Class`` names a class of the
    project's own."""
    if _TARGET.match(name):
        return DatasetType(name, name, PROJECT)
    types = installed_types()
    found = types.get(name)
    if found is not None and len(found) == 1:
        return found[0]
    if found:
        listed = "; ".join(f"{t.target} (from {t.source})" for t in found)
        return (
            f"dataset type {name!r} is offered by {len(found)} distributions: {listed}; "
            "uninstall one of them, or name the class itself (type: module:Class)"
        )
    import difflib

    close = difflib.get_close_matches(name, list(types), n=2)
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    known = ", ".join(types) or "none (pip install normandy-io gives csv, parquet, excel…)"
    return (
        f"unknown dataset type {name!r}; {hint}the installed types: {known}; or a class of "
        "the project's own, as module:Class"
    )


def load_type(dataset_type: DatasetType) -> type[Dataset]:
    """The class of ``dataset_type``, imported; :class:`DatasetError` saying why not."""
    label = f"dataset type {dataset_type.name!r} ({dataset_type.target}"
    label += f", from {dataset_type.source})" if dataset_type.source != PROJECT else ")"
    module_name, _, attr_path = dataset_type.target.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
    except Exception as exc:
        raise DatasetError(f"cannot import {label}: {type(exc).__name__}: {exc}") from exc
    for attr in attr_path.split("."):
        obj = getattr(obj, attr, None)
        if obj is None:
            raise DatasetError(f"cannot import {label}: {module_name} has no {attr_path!r}")
    if not (isinstance(obj, type) and issubclass(obj, Dataset)):
        raise DatasetError(
            f"{label} is not a dataset type: subclass normandy_core.datasets.Dataset "
            "(or FileDataset)"
        )
    return obj
