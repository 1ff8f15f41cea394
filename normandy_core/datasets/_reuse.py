"""Datasets in reuse (SPEC 13, 16): what a task's trace notes of each dataset it loaded
or saved, and the checks that tell whether that still holds.

A dataset is noted as its *declaration* (a keyed hash of its type, the type's code, its
path with the env applied and its arguments: editing ``load_args`` or pointing it
elsewhere counts as a change; its credentials are in the fingerprint's env already), the
version read or written (versioned datasets), its stamp then (size, modification time,
entity tag or, for a local file, inode and change time) and the keyed hash of its
content. A dataset is unchanged while its stamp is the one noted — no byte of it is read
— and, where the stamp changed, while its content hashes the same (a file touched, or
rewritten identically by a task that ran, reruns nothing). A stamp that tells nothing (a
store that gives neither size nor time nor tag) or content that cannot be hashed cheaply
(an object store) counts as changed when its stamp moved.

A *read* holds while the dataset the task would load now is the one it loaded: for a
versioned dataset, the version a load would pick now (the latest, or ``--load-version``).
A *write* holds while what the task saved is still there, unchanged: a deleted output
folder, or a file edited by hand, reruns its writer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from normandy_core.datasets._base import Stamp
from normandy_core.datasets._runtime import (
    DatasetCall,
    load_version,
    open_dataset,
    pinned_call,
)

if TYPE_CHECKING:
    from normandy_core.datasets._access import DatasetAccess
    from normandy_core.fingerprint import Keyed

NO_HASH = "-"


def declaration(call: DatasetCall, keyed: Keyed) -> str:
    """The keyed hash of what ``call``'s declaration says the dataset is."""
    from normandy_core.code import library_version, module_hash

    module = call.target.partition(":")[0]
    config = call.config
    return keyed(
        [
            call.type,
            call.target,
            module_hash(module),
            library_version(module.partition(".")[0]),
            config.path or "",
            dict(config.load_args),
            dict(config.save_args),
            dict(config.fs_args),
            dict(config.options),
            call.versioned,
        ]
    )


def noted(access: DatasetAccess, declared: str, keyed: Keyed) -> str:
    """How a trace notes one load or save of a dataset (see the module)."""
    content = keyed(access.hash) if access.hash is not None else NO_HASH
    return json.dumps(
        [declared, access.version, access.size, access.mtime, access.etag, content]
    )


def noted_version(seen: str) -> str | None:
    """The version a trace's note (:func:`noted`) names (``None``: not versioned, or not
    a note this release reads)."""
    try:
        version = json.loads(seen)[1]
    except (ValueError, TypeError, IndexError, KeyError):
        return None
    return version if isinstance(version, str) else None


class DatasetChecks:
    """The checks of one run for the datasets traces name: ``calls``, the run's datasets
    by name; ``unsure(kind, name)``: a preview's, whether a task that runs before may
    change the dataset; ``pinned``: the version a load reads where a reused task saved
    it. Declarations and content hashes are computed once per run (a
    hash per stamp: a task of the run may have rewritten the file since)."""

    def __init__(
        self,
        calls: Mapping[str, DatasetCall],
        keyed: Keyed,
        unsure: Callable[[str, str], bool] | None = None,
        pinned: Mapping[str, str] | None = None,
    ) -> None:
        self.calls = calls
        self.pinned = pinned if pinned is not None else {}
        """The versions this run's loads read where not the latest (see
        :meth:`~normandy_core.datasets._runtime.RunDatasets.pin`)."""
        self.keyed = keyed
        self.unsure = unsure or (lambda kind, name: False)
        self._declared: dict[str, str] = {}
        self._hashes: dict[tuple[str, str | None, Stamp], str | None] = {}

    def declared(self, name: str) -> str:
        found = self._declared.get(name)
        if found is None:
            found = self._declared[name] = declaration(self.calls[name], self.keyed)
        return found

    def read(self, name: str, seen: str) -> bool:
        """Whether the dataset ``name`` a task loaded (as ``seen``) is what it would load
        now."""
        return self._holds(name, seen, written=False)

    def written(self, name: str, seen: str) -> bool:
        """Whether what a task saved to the dataset ``name`` is still there, unchanged."""
        return self._holds(name, seen, written=True)

    def _holds(self, name: str, seen: str, *, written: bool) -> bool:
        from normandy_core.trace import DATASET, DATASET_WRITTEN

        if self.unsure(DATASET_WRITTEN if written else DATASET, name):
            return False
        call = self.calls.get(name)
        if call is None:  # no longer declared
            return False
        try:
            declared, version, size, mtime, etag, content = json.loads(seen)
        except (ValueError, TypeError):
            return False
        if declared != self.declared(name):
            return False
        call = pinned_call(call, self.pinned)
        try:
            if call.versioned and not written and load_version(call) != version:
                return False  # a load would now pick another version
            dataset = open_dataset(call, version)
            stamp = dataset.stamp()
        except Exception:  # noqa: BLE001 - what cannot be looked at counts as changed
            return False
        if stamp is None:  # gone
            return False
        if stamp.known and stamp == Stamp(size, mtime, etag):
            return True
        return content != NO_HASH and self._hash(call, version, stamp) == content

    def _hash(self, call: DatasetCall, version: str | None, stamp: Stamp) -> str | None:
        key = (call.name, version, stamp)
        if key not in self._hashes:
            try:
                found = open_dataset(call, version).content_hash()
            except Exception:  # noqa: BLE001
                found = None
            self._hashes[key] = self.keyed(found) if found is not None else None
        return self._hashes[key]
