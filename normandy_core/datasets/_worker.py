"""A task's datasets, in the worker that runs it (``run_task``): an input named like a
dataset is loaded from it, an output named like one is saved to it — staged while the
task's outputs are split, committed together once every one of them is staged, discarded
if the task fails (the previous files stay). Every read and write is noted
(:class:`~normandy_core.datasets._access.DatasetAccess`) for the history."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from normandy_core.datasets._access import READ, WRITE, DatasetAccess
from normandy_core.datasets._base import Dataset, Staged, Stamp
from normandy_core.datasets._runtime import DatasetCall, load_version, open_dataset


class MissingDataset(KeyError):
    """An input dataset that does not exist: the default of an optional parameter is used,
    a required one fails the task (``reason`` says why, in Normandy's words)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name)
        self.reason = reason


class DatasetUseError(Exception):
    """A task used a dataset in a way that cannot work (a dataset output written through
    ``pipe.vars``, a variable named like a dataset): Normandy's words, no traceback."""


class TaskDatasets:
    """The datasets of one attempt (``calls``: those it reads or writes, by name;
    ``names``: every dataset of the run, whose names variables may not take)."""

    def __init__(
        self,
        calls: Iterable[DatasetCall],
        run_id: str,
        names: Iterable[str] = (),
        mask: Callable[[str], str] = str,
    ) -> None:
        self.calls = {call.name: call for call in calls}
        self.run_id = run_id
        self.names = frozenset(names) | frozenset(self.calls)
        self.mask = mask
        self.accesses: list[DatasetAccess] = []
        self._staged: list[tuple[DatasetCall, Dataset, Staged, str | None]] = []

    # -- reading ----------------------------------------------------------------------------

    def reader(self, variables: Callable[[str], Any]) -> Callable[[str], Any]:
        """``read(name)``: the dataset ``name`` loaded, else the variable (``variables``)."""
        if not self.calls:
            return variables

        def read(name: str) -> Any:
            call = self.calls.get(name)
            return variables(name) if call is None else self.load(call)

        return read

    def preload(
        self, names: Iterable[str], variables: Callable[[str], Any]
    ) -> Callable[[str], Any]:
        """``read(name)`` as :meth:`reader` gives it, the datasets among ``names`` loaded
        now — before the task's trace starts: a dataset is verified as one (its stamp and
        content), not as the files its library happens to open. A missing one is raised
        as it is read (an optional parameter then takes its default)."""
        loaded: dict[str, Any] = {}
        missing: dict[str, MissingDataset] = {}
        for name in dict.fromkeys(names):
            call = self.calls.get(name)
            if call is None:
                continue
            try:
                loaded[name] = self.load(call)
            except MissingDataset as exc:
                missing[name] = exc
        later = self.reader(variables)

        def read(name: str) -> Any:
            if name in loaded:
                return loaded[name]
            if name in missing:
                raise missing[name]
            return later(name)

        return read

    def load(self, call: DatasetCall) -> Any:
        """Load ``call``'s dataset and note the read; :class:`MissingDataset` where it
        does not exist."""
        version = load_version(call) if call.versioned else None
        if call.versioned and version is None:
            raise MissingDataset(call.name, _missing(call, "it has no version yet"))
        dataset = open_dataset(call, version)
        before = dataset.stamp()
        if before is None:
            where = f" (version {version})" if version else ""
            raise MissingDataset(call.name, _missing(call, f"it does not exist{where}"))
        data = dataset.load()
        digest = dataset.content_hash()
        if dataset.stamp() != before:  # changed while it was read: no hash stands for it
            digest = None
        self._note(call, dataset, READ, version, before, digest)
        return data

    # -- writing ----------------------------------------------------------------------------

    def stage(self, outputs: Mapping[str, Any], declared: Iterable[str] = ()) -> dict[str, Any]:
        """Stage the outputs that are datasets; return the others (variables). Every
        ``declared`` output that is a dataset must be among ``outputs``."""
        if not self.calls:
            return dict(outputs)
        variables = {}
        for name, value in outputs.items():
            call = self.calls.get(name)
            if call is None:
                variables[name] = value
                continue
            version = self.run_id if call.versioned else None
            dataset = open_dataset(call, version)
            self._staged.append((call, dataset, dataset.stage(value), version))
        missing = [n for n in declared if n in self.calls and n not in outputs]
        if missing:
            raise DatasetUseError(
                f"its output {missing[0]!r} is a dataset ({self.calls[missing[0]].describe()}): "
                "return its value (the process returned None, having written variables "
                "through pipe.vars; a dataset is saved from the return value)"
            )
        return variables

    def commit(self, written: Iterable[str] = ()) -> None:
        """Make the staged saves the datasets' content (saves made at commit first: they
        can still fail; renames last). ``written``: the variables the task wrote, none of
        which may be named like a dataset."""
        clash = sorted(n for n in written if n in self.names)
        if clash:
            raise DatasetUseError(
                f"it wrote the variable {clash[0]!r} through pipe.vars, but {clash[0]!r} is "
                "a dataset of this project (confs.datasets): return the value as a declared "
                "output to save it there, or give the variable another name"
            )
        staged = sorted(self._staged, key=lambda s: not s[2].deferred)
        while staged:
            call, dataset, save, version = staged.pop(0)
            try:
                save.commit()
            except BaseException:
                save.discard()
                raise
            finally:
                self._staged = staged[:]
            stamp = dataset.stamp()
            digest = save.content_hash
            if digest is None and stamp is not None:
                digest = dataset.content_hash()
            self._note(call, dataset, WRITE, version, stamp, digest)

    def discard(self) -> None:
        """Drop what is staged: the datasets keep their previous content."""
        for _, _, save, _ in self._staged:
            with contextlib.suppress(OSError):
                save.discard()
        self._staged = []

    def _note(
        self,
        call: DatasetCall,
        dataset: Dataset,
        direction: str,
        version: str | None,
        stamp: Stamp | None,
        digest: str | None,
    ) -> None:
        stamp = stamp or Stamp()
        location = self.mask(str(dataset.path or dataset.describe()))
        self.accesses.append(
            DatasetAccess(
                call.name,
                direction,
                call.type,
                location,
                version,
                stamp.size,
                stamp.mtime,
                stamp.etag,
                digest,
            )
        )


def _missing(call: DatasetCall, why: str) -> str:
    return (
        f"its input dataset {call.name!r} ({call.describe()}) cannot be read: {why}; "
        "create it, or run the task that writes it first"
    )
