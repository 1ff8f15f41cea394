"""Datasets ready to use in a run: what a task's call carries of each dataset it reads
or writes (:class:`DatasetCall`, plain picklable data: the type's class is imported
where the dataset is used), the datasets of a whole run (:class:`RunDatasets`), and the
dataset object of a call (:func:`open_dataset`)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from normandy_core.datasets._base import Dataset, DatasetConfig
from normandy_core.datasets._files import resolve
from normandy_core.datasets._types import DatasetType, load_type
from normandy_core.datasets._versions import Versions, version_path

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_classes: dict[str, type[Dataset]] = {}
"""Type classes imported in this process, by target."""


@dataclass(frozen=True)
class DatasetCall:
    """One dataset as a task uses it: its type (``type``, the class ``target`` and the
    ``source`` offering it), its :class:`DatasetConfig` (path absolute, credentials
    resolved) and, for a versioned one, the version to load (``version``; ``None``: the
    latest)."""

    name: str
    type: str
    target: str
    source: str
    config: DatasetConfig
    versioned: bool = False
    version: str | None = None

    def describe(self) -> str:
        """``csv data/companies.csv`` (no credential)."""
        path = self.config.path or ""
        versioned = " (versioned)" if self.versioned else ""
        return f"{self.type} {path}{versioned}".rstrip()


Use = tuple[tuple[str, ...], tuple[str, ...]]
"""``(the datasets a task reads, those it writes)``."""


@dataclass(frozen=True)
class RunDatasets:
    """The datasets of a run: each by name, and which each task reads and writes."""

    calls: Mapping[str, DatasetCall] = field(default_factory=lambda: _EMPTY)
    use: Mapping[str, Use] = field(default_factory=lambda: _EMPTY)
    """Task key -> what it reads and writes (tasks that touch no dataset are left out)."""
    pinned: dict[str, str] = field(default_factory=dict, compare=False)
    """Versioned dataset -> the version this run's loads read, where its writer was
    reused (:meth:`pin`): the version that earlier run saved, not a newer one."""

    @functools.cached_property
    def names(self) -> frozenset[str]:
        return frozenset(self.calls)

    def call(self, name: str) -> DatasetCall:
        """The call of the dataset ``name`` as a load in this run reads it now."""
        return pinned_call(self.calls[name], self.pinned)

    def of_task(self, key: str) -> tuple[DatasetCall, ...]:
        """The datasets the task ``key`` reads or writes."""
        reads, writes = self.use.get(key, ((), ()))
        return tuple(self.call(name) for name in dict.fromkeys([*reads, *writes]))

    def pin(self, name: str, version: str | None) -> None:
        """A task reused from an earlier run stands for what it saved to ``name``: this
        run's loads of it read ``version`` (a versioned dataset; ``--load-version`` still
        wins). ``None``: a task of this run saved it, and loads read the latest again."""
        call = self.calls.get(name)
        if call is None or not call.versioned:
            return
        if version is None:
            self.pinned.pop(name, None)
        else:
            self.pinned[name] = version


def pinned_call(call: DatasetCall, pinned: Mapping[str, str]) -> DatasetCall:
    """``call`` loading the version ``pinned`` holds for it (see :meth:`RunDatasets.pin`),
    unless ``--load-version`` named one."""
    version = pinned.get(call.name)
    if version is not None and call.versioned and call.version is None:
        return replace(call, version=version)
    return call


def dataset_call(
    spec: Any,
    dataset_type: DatasetType,
    root: str,
    credentials: Mapping[str, Any] | None = None,
    version: str | None = None,
) -> DatasetCall:
    """The call of the declared dataset ``spec`` (a
    :class:`~normandy_core.config.DatasetSpec`) in a project at ``root``."""
    config = DatasetConfig(
        name=spec.name,
        type=spec.type,
        path=resolve(spec.path, root) if spec.path else None,
        load_args=dict(spec.load_args),
        save_args=dict(spec.save_args),
        fs_args=dict(spec.fs_args),
        credentials=(credentials or {}).get(spec.credentials) if spec.credentials else None,
        options=dict(spec.options),
        root=root,
    )
    return DatasetCall(
        spec.name,
        spec.type,
        dataset_type.target,
        dataset_type.source,
        config,
        spec.versioned,
        version,
    )


def dataset_class(call: DatasetCall) -> type[Dataset]:
    """The class of the call's type, imported once per process."""
    cls = _classes.get(call.target)
    if cls is None:
        cls = _classes[call.target] = load_type(DatasetType(call.type, call.target, call.source))
    return cls


def open_dataset(call: DatasetCall, version: str | None = None) -> Dataset:
    """The dataset object of ``call``; for a versioned dataset, of its file of
    ``version`` (a run id)."""
    config = call.config
    if call.versioned and version is not None and config.path is not None:
        config = replace(config, path=version_path(config.path, version))
    return dataset_class(call)(config)


def versions_of(call: DatasetCall) -> Versions:
    """The versions of a versioned dataset."""
    assert call.config.path is not None
    options = dict(call.config.fs_args)
    if isinstance(call.config.credentials, Mapping):
        options.update(call.config.credentials)
    return Versions(call.config.path, options)


def load_version(call: DatasetCall) -> str | None:
    """The version a load of a versioned dataset reads: the one asked for, else the
    latest (``None``: there is none)."""
    return call.version if call.version is not None else versions_of(call).latest()
