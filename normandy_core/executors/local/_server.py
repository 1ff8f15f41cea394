"""A fork server, from its owner's side: the process the engine's workers (and
``validate``'s import checks) are forked from. Its own side is
:mod:`~normandy_core.executors.local._zygote`.

Why a server, and not ``os.fork()`` of ``normandy`` itself: ``normandy`` runs threads (the
log listener, the pool's manager), and forking a threaded process copies locks in the
middle of their use. The server is a fresh interpreter, single-threaded, that has
imported what every child needs, so a new child costs a fork and nothing more; and it can
import the run's process modules once, for every worker forked after (:meth:`prepare`).

It is started with ``subprocess`` (a process group of its own, in ``normandy``'s
session; standard streams on ``/dev/null``; one socket passed), owned by one object, and
ends with it (:meth:`close`) or with its owner's process, whose end closes the socket.
Nothing here depends on ``multiprocessing``'s start methods, nor on any private part of
CPython.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from normandy_core.executors.local._wire import receive, send

ExitCallback = Callable[[int, "int | None"], None]
"""``(pid, exit code)``: a child of the server ended (code negative: its signal)."""


@dataclass
class Imports:
    """An order to import modules, as it goes: :attr:`current` is the module being
    imported and :attr:`since` when it began; :attr:`done` is set with :attr:`report`
    (``seconds``, ``imported``: module -> seconds, ``failed``: module -> error,
    ``output``, ``threads``; or ``error`` where the server could not answer)."""

    modules: tuple[str, ...]
    current: str | None = None
    since: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    report: dict[str, Any] = field(default_factory=dict)

    def finish(self, report: dict[str, Any]) -> None:
        if not self.done.is_set():
            self.report = report
            self.current = None
            self.done.set()


class ServerGone(Exception):
    """The fork server ended (or never started): nothing more can be forked from it."""


class ForkServer:
    """A fork server process that has imported ``base`` (see the module's docstring).

    ``on_exit(pid, code)`` is called, from the server's reading thread, when one of its
    children ends; ``on_report(imports)`` when an import order is done (or the server is
    gone with it unfinished)."""

    def __init__(
        self,
        base: Sequence[str] = (),
        *,
        on_exit: ExitCallback | None = None,
        on_report: Callable[[Imports], None] | None = None,
        name: str = "normandy-fork-server",
    ) -> None:
        self.base = tuple(base)
        self.on_exit = on_exit
        self.on_report = on_report
        self.name = name
        self.pid: int | None = None
        self.ready = threading.Event()
        self.imported: frozenset[str] = frozenset()
        """Every module imported there so far (what a child forked now starts with)."""
        self.failed: dict[str, str] = {}
        self._ordered: set[str] = set()  # every module ordered imported, done or not
        self._orders = itertools.count(1)
        self._forks: dict[int, Future[int]] = {}
        self._imports: dict[int, Imports] = {}
        self._send_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._gone = False
        self._thread: threading.Thread | None = None
        self.adopted = False
        """An executor took it over (a server started ahead of a run, see
        :func:`normandy_core.executors.local.start_fork_server`)."""

    # -- life ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server now; its interpreter starts and imports ``base`` in the
        background (:attr:`ready` is set once it has). Harmless to call again."""
        if self._proc is not None:
            return
        ours, theirs = socket.socketpair()
        argv = [sys.executable, "-m", "normandy_core.executors.local._zygote"]
        try:
            self._proc = subprocess.Popen(
                [*argv, str(theirs.fileno()), *self.base],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                process_group=0,  # a Ctrl-C in the terminal is normandy's to handle
                env=_environment(),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours
        self.pid = self._proc.pid
        self._thread = threading.Thread(target=self._read, name=self.name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._proc is not None and not self._gone

    def close(self, wait: float = 2.0) -> None:
        """Stop the server (its children are their owner's to stop), within ``wait``
        seconds, then by SIGKILL. Never raises."""
        proc, sock = self._proc, self._sock
        if proc is None or sock is None:
            return
        with contextlib.suppress(OSError), self._send_lock:
            send(sock, ("stop",))
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(wait)
        if self._thread is not None:
            self._thread.join(wait)
        with contextlib.suppress(OSError):
            sock.close()

    def kill(self) -> None:
        """SIGKILL the server, at once (a signal handler may call this)."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(OSError):
                os.kill(self._proc.pid, 9)

    # -- orders ----------------------------------------------------------------------------

    def prepare(self, modules: Sequence[str], sys_path: Sequence[str]) -> Imports:
        """Import ``modules`` there (those not imported yet), ``sys_path`` first on its
        path; every child forked after the imports has them. Orders are carried out one
        at a time, in order: a fork ordered after this waits for it."""
        with self._state_lock:
            wanted = tuple(m for m in dict.fromkeys(modules) if m not in self._ordered)
            self._ordered.update(wanted)
        imports = Imports(wanted)
        if not wanted:
            imports.finish({"seconds": 0.0, "imported": {}, "failed": {}})
            return imports
        order = next(self._orders)
        with self._state_lock:
            self._imports[order] = imports
        try:
            self._send(("import", order, list(wanted), list(sys_path)))
        except ServerGone as exc:
            self._end_import(order, {"error": str(exc)})
        return imports

    def fork(self, target: str, args: tuple[Any, ...], fds: Sequence[int]) -> Future[int]:
        """Fork a child that calls ``target(fds, *args)`` (``"module:function"``: args
        pickled, the descriptors copied into it); the future ends with its pid, or
        :class:`ServerGone`."""
        order = next(self._orders)
        future: Future[int] = Future()
        with self._state_lock:
            self._forks[order] = future
        try:
            self._send(("fork", order, target, args), fds)
        except ServerGone as exc:
            with self._state_lock:
                self._forks.pop(order, None)
            future.set_exception(exc)
        return future

    def busy_importing(self) -> Imports | None:
        """The import order being carried out, if any."""
        with self._state_lock:
            for imports in self._imports.values():
                if imports.current is not None:
                    return imports
        return None

    def _send(self, message: Any, fds: Sequence[int] = ()) -> None:
        if self._sock is None or self._gone:
            raise ServerGone("the fork server is not running")
        try:
            with self._send_lock:
                send(self._sock, message, fds)
        except OSError as exc:
            raise ServerGone(f"the fork server is gone ({exc})") from None

    # -- the reading thread ----------------------------------------------------------------

    def _read(self) -> None:
        assert self._sock is not None
        try:
            while True:
                message, fds = receive(self._sock)
                for fd in fds:
                    os.close(fd)
                self._handle(message)
        except (EOFError, OSError):
            pass
        finally:
            self._lost()

    def _handle(self, message: Any) -> None:
        kind = message[0]
        if kind == "exited":
            if self.on_exit is not None:
                self.on_exit(message[1], message[2])
        elif kind == "forked":
            with self._state_lock:
                future = self._forks.pop(message[1], None)
            if future is not None:
                future.set_result(message[2])
        elif kind == "importing":
            with self._state_lock:
                imports = self._imports.get(message[1])
            if imports is not None:
                imports.current, imports.since = message[2], time.monotonic()
        elif kind == "imported":
            report = message[2]
            self.imported |= frozenset(report.get("imported", {}))
            self.failed.update(report.get("failed", {}))
            self._end_import(message[1], report)
        elif kind == "ready":
            self.failed.update(message[2])
            self.ready.set()

    def _end_import(self, order: int, report: dict[str, Any]) -> None:
        with self._state_lock:
            imports = self._imports.pop(order, None)
        if imports is not None:
            imports.finish(report)
            if self.on_report is not None:
                self.on_report(imports)

    def _lost(self) -> None:
        """The server ended: what was ordered of it never will be."""
        self._gone = True
        self.ready.set()
        with self._state_lock:
            forks, self._forks = list(self._forks.values()), {}
            orders = list(self._imports)
        for future in forks:
            if not future.done():
                future.set_exception(ServerGone("the fork server ended"))
        for order in orders:
            self._end_import(order, {"error": "the fork server ended"})


def import_path() -> str:
    """This process's import path as ``PYTHONPATH`` says it: what the server and its
    children (and what they start) are given, so that they import what this process
    would."""
    return os.pathsep.join(p for p in sys.path if p)


def _environment() -> dict[str, str]:
    """The server's environment: this process's (it is the run's), with this process's
    import path, so that it imports Normandy from where this process did."""
    env = dict(os.environ)
    env["PYTHONPATH"] = import_path()
    return env
