"""Checking that processes can be imported and called (``normandy validate``), with their
modules imported side by side in child processes.

Importing a process module is most of what ``validate`` costs (pandas, scikit-learn:
seconds), and ``validate`` imports each module once. One after another, that is the sum of
the imports; in ``min(CPUs, modules)`` children, each importing its share of the modules,
it is about the longest share. The children are forked from a fork server, the same way
the ``local`` engine starts its workers (:mod:`normandy_core.executors.local._server`),
never by forking ``normandy`` itself. The ``normandy`` process imports none of the modules
(SPEC 3: checking does not import a process module where nothing runs), and a module that
kills the process importing it (``os._exit``, a segfault) is reported as such.

Where it is not worth it (a single module or CPU), or no server can be started, the
modules are imported here, one after another.
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
        self._children = _Children(registry, shares) if len(shares) > 1 else None

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
        if self._children is not None:
            self._found.update(self._children.collect())
            self._children = None
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
    count = min(os.cpu_count() or 1, len(groups))
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


class _Children:
    """The children checking their shares, forked from a fork server of their own: the
    reading end of each one's answers, and each one's exit status once it ended."""

    def __init__(self, registry: Registry, shares: Sequence[list[str]]) -> None:
        from normandy_core.executors.local._server import ForkServer

        self.ended: dict[int, int | None] = {}
        self.done = threading.Condition()
        self.server = ForkServer(
            ("normandy_core._import_check",), on_exit=self._exited, name="normandy-check"
        )
        self.server.start()
        self.children: list[tuple[list[str], int, int]] = []  # share, answers, pid
        paths = [p for p in sys.path if p]
        try:
            for share in shares:
                specs = [registry.get(name) for name in share]
                targets = [(s.name, s.target, s.source) for s in specs]
                read, write = os.pipe()
                try:
                    fork = self.server.fork(
                        "normandy_core._import_check:check_share", (paths, targets), [write]
                    )
                finally:
                    os.close(write)
                self.children.append((share, read, fork.result(timeout=60)))
        except BaseException:
            self.server.close()
            raise

    def _exited(self, pid: int, code: int | None) -> None:
        with self.done:
            self.ended[pid] = code
            self.done.notify_all()

    def _wait(self, pid: int, within: float = 10.0) -> None:
        with self.done:
            self.done.wait_for(lambda: pid in self.ended, timeout=within)

    def collect(self) -> dict[str, _Answer]:
        found: dict[str, _Answer] = {}
        try:
            for share, read, pid in self.children:
                with os.fdopen(read, "rb") as answers:
                    data = answers.read()
                self._wait(pid)
                try:
                    found.update(pickle.loads(data))
                except Exception:  # noqa: BLE001 - it died before answering: say how
                    why = _died(self.ended.get(pid))
                    for name in share:
                        found.setdefault(name, (None, f"importing process {name!r} {why}"))
        finally:
            self.server.close()
        return found


def check_share(fds: list[int], paths: list[str], targets: list[tuple[str, str, str]]) -> None:
    """In a child of the fork server: check ``targets`` (name, target, source), send the
    answers on ``fds[0]``."""
    from normandy_core.binding import signature_of
    from normandy_core.registry import import_target

    sys.path[:0] = [p for p in paths if p not in sys.path]
    answers: dict[str, _Answer] = {}
    for name, target, source in targets:
        try:
            answers[name] = (signature_of(import_target(target, name, source), name, target), None)
        except ProcessLoadError as exc:
            answers[name] = (None, str(exc))
    _flush()  # what a module printed when imported, as an import here would
    with os.fdopen(fds[0], "wb") as out:
        pickle.dump(answers, out)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or replaced stream: nothing to keep
            stream.flush()


def _died(code: int | None) -> str:
    if code is None:
        return "ended the process importing it"
    if code < 0:
        import signal

        try:
            what = signal.Signals(-code).name
        except ValueError:
            what = f"signal {-code}"
        return f"killed the process importing it ({what})"
    return f"ended the process importing it (exit status {code})"
