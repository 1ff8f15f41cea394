"""Keeping the store bounded (SPEC 13, 20): ``normandy gc`` and ``confs.keep_runs``, which
every run applies when it ends — the last :data:`DEFAULT_KEEP` runs where it is not given,
every run with ``keep_runs: 0``.

A run's stored variables (``<store>/runs/<run_id>/``) and its log folder
(``logs/<run_id>/``) are deleted once it is older than the runs kept — the latest ``keep``
— unless a kept run uses them (it reused a task of that run, resumed it, or took a partial
run's inputs from it: the history's ``uses``, followed to the end). The run's rows stay in
the history, marked pruned: ``runs`` and ``report`` still show it.

Reused variables are hard links where the store allows: the bytes of a variable shared by
a pruned run and a kept one stay until the last of them goes, and sizes count only the
bytes a run does not share.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from normandy_core.history import History, RunState
from normandy_core.status import RUNNING
from normandy_core.store import LocalPlace, Place, store_root
from normandy_core.units import format_size

DEFAULT_KEEP = 20
"""Runs kept where ``confs.keep_runs`` is not given (and by ``normandy gc``)."""


def keep_runs(setting: int | None) -> int:
    """How many runs a run keeps when it ends (``confs.keep_runs``): ``0`` keeps every
    run; not given, :data:`DEFAULT_KEEP`."""
    return DEFAULT_KEEP if setting is None else setting


@dataclass
class Collected:
    """What a collection did (or, with ``dry_run``, would do)."""

    runs: list[str] = field(default_factory=list)
    """The runs pruned, newest first."""
    freed: int = 0
    """Bytes freed."""
    kept: int = 0
    dry_run: bool = False

    def describe(self) -> str:
        n = len(self.runs)
        verb = "would prune" if self.dry_run else "pruned"
        runs = f"{n} run{'s' * (n != 1)}"
        return f"{verb} {runs}, {format_size(self.freed)} {'to free' if self.dry_run else 'freed'}"


def collect(
    root: Path,
    store_setting: str | None,
    *,
    keep: int = DEFAULT_KEEP,
    older_than: float | None = None,
    dry_run: bool = False,
) -> Collected:
    """Prune the runs of the project at ``root`` beyond the latest ``keep`` (and older than
    ``older_than`` days, if given), but those a kept run uses, those still running and
    those a running run uses.

    The runs are marked pruned in one transaction of the history before their files are
    deleted: a run that is binding variables claims their run in a transaction of its own
    (:meth:`History.claim`), so that either it claimed first and its source is kept here,
    or this marked first and the run does not bind from it."""
    store = store_root(root, store_setting)
    cutoff = time.time() - older_than * 86400 if older_than is not None else None

    def choose(runs: list[RunState], sources: Callable[[Iterable[str]], set[str]]) -> list[str]:
        kept = runs[:keep]
        running = [r for r in runs if r.status == RUNNING]
        used = sources(r.id for r in [*kept, *running])
        return [
            r.id
            for r in runs[keep:]
            if r.status != RUNNING and r.id not in used and (cutoff is None or r.started < cutoff)
        ]

    history = History(root / ".normandy")
    try:
        total = len([r for r in history.states() if r.pruned is None])
        if dry_run:
            doomed = history.prune_runs(choose, time.time(), dry_run=True)
            folders = [f for run_id in doomed for f in _folders(root, store, run_id)]
            return Collected(doomed, _freed(folders), total - len(doomed), True)
        doomed = history.prune_runs(choose, time.time())
        leftovers = [r.id for r in history.states() if r.pruned is not None and r.id not in doomed]
    finally:
        history.close()
    folders = [f for run_id in doomed for f in _folders(root, store, run_id)]
    result = Collected(doomed, _freed(folders), total - len(doomed), False)
    for folder in folders:
        _remove(folder)
    for run_id in leftovers:  # a gc stopped between marking and deleting: finished now
        for folder in _folders(root, store, run_id):
            if folder.exists():
                _remove(folder)
    return result


def run_sizes(root: Path, store_setting: str | None, run_ids: Iterable[str]) -> dict[str, int]:
    """Each run's bytes on disk that pruning it would free: its variables and logs, not
    counting the variables it shares with other runs (reuse)."""
    store = store_root(root, store_setting)
    return {run_id: _freed(_folders(root, store, run_id)) for run_id in run_ids}


def store_size(root: Path, store_setting: str | None) -> int:
    """The bytes the project's stored runs take: every run's variables and log folder
    (a file linked into several runs counted once)."""
    store = store_root(root, store_setting)
    return _freed([store / "runs", LocalPlace(root / "logs")])


def _folders(root: Path, store: Place, run_id: str) -> list[Place]:
    return [store / "runs" / run_id, LocalPlace(root / "logs" / run_id)]


def _freed(folders: list[Place]) -> int:
    """The bytes that deleting ``folders`` frees: a hard-linked file counts only where
    every one of its links is among them."""
    seen: dict[tuple[int, int], list[int]] = {}  # (device, inode) -> [size, links, found]
    remote = 0
    for folder in folders:
        if not isinstance(folder, LocalPlace):
            remote += _remote_size(folder)
            continue
        for dirpath, _dirs, files in os.walk(folder.path):
            for name in files:
                try:
                    st = os.lstat(os.path.join(dirpath, name))
                except OSError:
                    continue
                entry = seen.setdefault((st.st_dev, st.st_ino), [st.st_size, st.st_nlink, 0])
                entry[2] += 1
    return remote + sum(size for size, links, found in seen.values() if found >= links)


def _remote_size(folder: Place) -> int:
    fs = getattr(folder, "fs", None)
    path = getattr(folder, "path", None)
    if fs is None or path is None:
        return 0
    try:
        return int(fs.du(path))
    except (OSError, ValueError):
        return 0


def _remove(folder: Place) -> None:
    if isinstance(folder, LocalPlace):
        shutil.rmtree(folder.path, ignore_errors=True)
    else:
        folder.remove()
