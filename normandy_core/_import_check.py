"""Checking that processes can be imported and called (``normandy validate``), with their
modules imported side by side in child processes.

Importing a process module is most of what ``validate`` costs (pandas, scikit-learn:
seconds), and ``validate`` imports each module once. One after another, that is the sum of
the imports; in ``min(CPUs, modules)`` forked children, each importing its share of the
modules, it is about the longest share. The ``normandy`` process itself imports none of
them (SPEC 3: checking does not import a process module where nothing runs), and a module
that kills the process importing it (``os._exit``, a segfault) is reported as such.

Where forking is not safe or not worth it (threads running, a single module or CPU, no
``fork``), the modules are imported here, one after another, as before.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from normandy_core.binding import Signature
from normandy_core.errors import ProcessLoadError
from normandy_core.registry import Registry


class ImportChecks:
    """The checks of ``names`` (processes known, without a clash), started at once in
    child processes, one per module up to the CPU count; :meth:`result` waits for them.
    The caller does its other checks meanwhile."""

    def __init__(self, registry: Registry, names: Iterable[str]) -> None:
        self.registry = registry
        self.names = list(dict.fromkeys(names))
        self._found: dict[str, _Answer] = {}
        self._complete = False
        self.files: dict[str, Path | None] = {}
        """Where each module's source is, for the checks reading it meanwhile."""
        groups: dict[str, list[str]] = {}
        for name in self.names:
            spec = registry.get(name)
            if spec.obj is None:
                groups.setdefault(spec.target.partition(":")[0], []).append(name)
        shares = _shares(list(groups.values()))
        self._children = _fork(registry, shares) if len(shares) > 1 else []

    def result(self) -> dict[str, str | None]:
        """For each name: ``None`` where its module imports and it can be called with what
        Normandy gives, else the message saying why not."""
        return {name: self._answers()[name][1] for name in self.names}

    def signature(self, name: str) -> Signature | None:
        """``name``'s signature as its import found it (``None``: it has a problem)."""
        return self._answers()[name][0] if name in self.names else None

    def _answers(self) -> dict[str, _Answer]:
        """Every answer, gathered at the first call (once per check, not per name)."""
        if self._complete:
            return self._found
        if self._children:
            self._found.update(_collect(self._children))
            self._children = []
        for name in self.names:
            if name not in self._found:
                self._found[name] = _check(self.registry, name)
        self._complete = True
        return self._found


def import_problems(registry: Registry, names: Iterable[str]) -> dict[str, str | None]:
    """:meth:`ImportChecks.result` at once."""
    return ImportChecks(registry, names).result()


def _shares(groups: list[list[str]]) -> list[list[str]]:
    """The names to check, split by module into one share per child: a module a child
    while there are CPUs (the slowest import then sets the pace), round robin past that."""
    can_fork = hasattr(os, "fork") and threading.active_count() == 1
    count = min(os.cpu_count() or 1, len(groups)) if can_fork else 1
    shares: list[list[str]] = [[] for _ in range(max(count, 1) if groups else 0)]
    for i, group in enumerate(groups):
        shares[i % len(shares)].extend(group)
    return shares


_Answer = tuple["Signature | None", "str | None"]
"""A check's answer: the signature, or the message saying why there is none."""


def _check(registry: Registry, name: str) -> _Answer:
    try:
        return registry.signature(name, load=True), None
    except ProcessLoadError as exc:
        return None, str(exc)


def _fork(registry: Registry, shares: Sequence[list[str]]) -> list[tuple[int, int, list[str]]]:
    _flush()  # nothing buffered here is written twice
    children: list[tuple[int, int, list[str]]] = []
    for share in shares:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: check its share, send the answers, and go
            os.close(read)
            code = 0
            try:
                answers = {name: _check(registry, name) for name in share}
                with os.fdopen(write, "wb") as out:
                    pickle.dump(answers, out)
            except BaseException:  # noqa: BLE001 - whatever it was, the parent says so
                code = 1
            finally:
                _flush()  # what a module printed when imported, as an import here would
                os._exit(code)
        os.close(write)
        children.append((pid, read, share))
    return children


def _collect(children: list[tuple[int, int, list[str]]]) -> dict[str, _Answer]:
    found: dict[str, _Answer] = {}
    for pid, read, share in children:
        with os.fdopen(read, "rb") as answers:
            data = answers.read()
        _, status = os.waitpid(pid, 0)
        try:
            found.update(pickle.loads(data))
        except Exception:  # noqa: BLE001 - it died before answering: say how
            why = _died(status)
            for name in share:
                found.setdefault(name, (None, f"importing process {name!r} {why}"))
    return found


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or replaced stream: nothing to keep
            stream.flush()


def _died(status: int) -> str:
    if os.WIFSIGNALED(status):
        import signal

        try:
            what = signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            what = f"signal {os.WTERMSIG(status)}"
        return f"killed the process importing it ({what})"
    return f"ended the process importing it (exit status {os.waitstatus_to_exitcode(status)})"
