"""How the things a trace names are now (SPEC 13): the checks :func:`verify` is given, one
per kind of read (:mod:`normandy_core.trace`), made once per run and shared by its tasks.

A file is unchanged while its size, modification and change times and inode are those
recorded; where one of them changed, its content is hashed again and compared (a ``touch``
reruns nothing). Hashes are kept for the run, so a file read by many tasks is hashed once
— but never its stamp: a task of this run may have rewritten it since.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from normandy_core._tracing import environ_listing, parse_stamp
from normandy_core._tracing._hooks import file_digest, listing
from normandy_core.code import library_version, module_hash
from normandy_core.fingerprint import Keyed, digest
from normandy_core.trace import (
    ABSENT,
    ENVIRON,
    EVERYTHING,
    EXISTS,
    FILE,
    FOLDER,
    LIBRARY,
    LISTING,
    MODULE,
    PARAM,
    VARIABLE,
    Check,
)

UNKNOWN = "?"
"""A variable's hash in a preview, where a task that runs makes it."""

YES, NO = "yes", "no"


def names_hash(names: list[str]) -> str:
    return digest(sorted(names))


class Now:
    """The checks of one run, for the things every task sees alike (files, folders,
    environment variables, modules, libraries)."""

    def __init__(self, keyed: Keyed, root: Path) -> None:
        self.keyed = keyed
        self.root = root
        self._hashes: dict[tuple[str, tuple[int, int, int, int]], str] = {}
        self._modules: dict[str, str] = {}
        self.unsure: Callable[[str, str], bool] = lambda kind, name: False
        """A preview's: whether a task that runs before may change this file."""

    def file(self, path: str, seen: str) -> bool:
        if self.unsure(FILE, path):
            return False
        try:
            info = os.stat(path)
        except OSError:
            return seen == ABSENT
        recorded = parse_stamp(seen)
        if recorded is None:
            return False
        stamp = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        if stamp == recorded[0]:
            return True
        if info.st_size != recorded[0][0]:
            return False
        hashed = self._hashes.get((path, stamp))
        if hashed is None:
            hashed = self._hashes[(path, stamp)] = self.keyed.bytes(file_digest(path))
        return hashed == recorded[1]

    def folder(self, path: str, seen: str) -> bool:
        if self.unsure(FOLDER, path):
            return False
        found = listing(path)
        return (ABSENT if found is None else self.keyed.bytes(found)) == seen

    def environ(self, name: str, seen: str) -> bool:
        if name == EVERYTHING:
            left_out = seen.partition(":")[2]
            names = list(os.environ)
            return (
                environ_listing(self.keyed, left_out.split(",") if left_out else (), names) == seen
            )
        value = os.environ.get(name)
        return (ABSENT if value is None else self.keyed(value)) == seen

    def module(self, name: str, seen: str) -> bool:
        found = self._modules.get(name)
        if found is None:
            found = self._modules[name] = module_hash(name)
        return found == seen

    @staticmethod
    def library(top: str, seen: str) -> bool:
        return library_version(top) == seen

    def shown_path(self, path: str) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return path


def task_checks(
    now: Now,
    hash_of: Callable[[str], str | None],
    names: Callable[[], list[str]],
    param: Callable[[str], str],
) -> dict[str, Check]:
    """The checks for one task: ``hash_of`` its flow's variables now, ``names`` of them,
    ``param`` the keyed hash of one of its params (``*``: all)."""
    return {
        VARIABLE: lambda name, seen: (hash_of(name) or ABSENT) == seen,
        EXISTS: lambda name, seen: (YES if hash_of(name) is not None else NO) == seen,
        LISTING: lambda name, seen: names_hash(names()) == seen,
        PARAM: lambda key, seen: param(key) == seen,
        ENVIRON: now.environ,
        FILE: now.file,
        FOLDER: now.folder,
        MODULE: now.module,
        LIBRARY: now.library,
    }


def shown(
    now: Now, earlier: Callable[[], Mapping[str, Any]], later: Mapping[str, Any]
) -> Callable[[str, str], str]:
    """How a changed read is shown: a param with its old and new values (``earlier()``,
    ``later``: as they may be shown, credentials masked), a path from the project. The
    old values are read only where a param changed (most reused tasks: never)."""

    def show(kind: str, name: str) -> str:
        if kind == PARAM:
            then = earlier()
            if name != EVERYTHING:
                return f"{name}: {_value(then, name)} → {_value(later, name)}"
            keys = sorted(k for k in then.keys() | later.keys() if then.get(k) != later.get(k))
            parts = [f"{k}: {_value(then, k)} → {_value(later, k)}" for k in keys]
            return "; ".join(parts) or "one of them (all are read)"
        if kind in (FILE, FOLDER):
            return now.shown_path(name)
        if kind == ENVIRON and name == EVERYTHING:
            return "the list of variables"
        return name

    return show


def _value(params: Mapping[str, Any], key: str) -> str:
    if key not in params:
        return "(none)"
    return json.dumps(params[key], sort_keys=True, default=str)
