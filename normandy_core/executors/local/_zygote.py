"""The fork server's own process (``python -m normandy_core.executors.local._zygote FD
MODULE...``): a fresh interpreter that imports what its children need, then forks them
on demand. See :class:`~normandy_core.executors.local._server.ForkServer`, its owner's
side.

It reads orders on the socket ``FD`` (the only descriptor it inherits: its standard
streams are ``/dev/null``, so it never holds ``normandy``'s output open), one at a time:

- ``("import", order, modules, sys_path)``: import each module, replying
  ``("importing", order, module)`` before each and ``("imported", order, report)`` at the
  end. What the modules print goes to the report, never anywhere else.
- ``("fork", order, target, args)`` with descriptors: fork a child that calls
  ``target(fds, *args)`` (``"module:function"``) and exits; reply ``("forked", order,
  pid)``.
- ``("exited", pid, code)`` is sent, unasked, when a child ends (``code`` negative: the
  signal that killed it), from the SIGCHLD handler itself where no other message is being
  sent, so that a long import does not delay it.

It ends when its socket closes (its owner is gone, however it went) or at ``("stop",)``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import select
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from normandy_core.executors.local._wire import receive, send


class _Zygote:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sending = False
        self.children: set[int] = set()

    def say(self, message: Any) -> None:
        self.sending = True
        try:
            send(self.sock, message)
        finally:
            self.sending = False

    def reap(self, signum: int = 0, frame: Any = None) -> None:
        """Report every child that ended (in the handler only when no message is being
        sent: else the main loop does, after it)."""
        if self.sending:
            return
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self.say(("exited", pid, os.waitstatus_to_exitcode(status)))

    def serve(self) -> None:
        while True:
            readable, _, _ = _select_retrying([self.sock])
            self.reap()
            if not readable:
                continue
            try:
                message, fds = receive(self.sock)
            except (EOFError, OSError):
                return
            kind = message[0]
            if kind == "stop":
                return
            if kind == "import":
                _, order, modules, sys_path = message
                self.say(("imported", order, self.import_all(order, modules, sys_path)))
            elif kind == "fork":
                _, order, target, args = message
                self.say(("forked", order, self.fork(target, args, fds)))

    def import_all(self, order: int, modules: list[str], sys_path: list[str]) -> dict[str, Any]:
        for entry in reversed(sys_path):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        imported: dict[str, float] = {}
        failed: dict[str, str] = {}
        before = {t.ident for t in threading.enumerate()}
        began = time.perf_counter()
        with _captured() as output:
            for name in modules:
                self.say(("importing", order, name))
                start = time.perf_counter()
                try:
                    importlib.import_module(name)
                except BaseException as exc:  # noqa: BLE001 - SystemExit at import included
                    failed[name] = f"{type(exc).__name__}: {exc}"
                    continue
                imported[name] = round(time.perf_counter() - start, 4)
        threads = [t.name for t in threading.enumerate() if t.ident not in before]
        return {
            "seconds": round(time.perf_counter() - began, 4),
            "imported": imported,
            "failed": failed,
            "output": output[0],
            "threads": threads,
        }

    def fork(self, target: str, args: tuple[Any, ...], fds: list[int]) -> int:
        function = _resolve(target)
        # what the server imported is moved out of the collector's sight, in the worker
        # too: its collections never walk pandas' or scikit-learn's objects (a full one
        # took tens of ms), nor write to their pages, which stay shared with the server
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # the child: it owns nothing of the server's
            code = 1
            try:
                signal.set_wakeup_fd(-1)
                for sig in (signal.SIGCHLD, signal.SIGTERM):
                    signal.signal(sig, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own
                self.sock.close()
                function(fds, *args)
                code = 0
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        self.children.add(pid)
        for fd in fds:
            os.close(fd)
        return pid


def _resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def _select_retrying(fds: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    try:
        return select.select(fds, [], [], 1.0)  # wakes each second to reap, at worst
    except InterruptedError:  # pragma: no cover - Python retries select itself
        return [], [], []


@contextlib.contextmanager
def _captured() -> Iterator[list[str]]:
    """Descriptors 1 and 2 into a temporary file for the time of the imports."""
    found = [""]
    with tempfile.TemporaryFile() as sink:
        saved = [os.dup(1), os.dup(2)]
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield found
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            found[0] = kept_output(sink, OUTPUT_KEPT)


OUTPUT_KEPT = 32 << 20
"""Bytes of what the modules print at import that the run's log keeps (the reply that
carries it is held in memory twice): what comes after is left out, with a note."""


def kept_output(sink: Any, limit: int) -> str:
    """What ``sink`` (a binary file, at its start) holds, up to ``limit`` bytes cut at the
    end of a line, and a note of what was left out (never a line cut in the middle, never
    a silent loss)."""
    data = sink.read(limit + 1)
    if len(data) <= limit:
        return str(data.decode(errors="replace"))
    end = data.rfind(b"\n", 0, limit) + 1  # 0: a first line longer than the limit
    rest = len(data) - end + _size_after(sink)
    lines = data.count(b"\n", end) + _lines_after(sink)
    return (
        data[:end].decode(errors="replace")
        + f"[normandy: {rest:,} more bytes ({lines:,} lines) printed at import are left "
        f"out of this log; print less when imported, or turn preloading off "
        f"(confs.preload: false, NORMANDY_PRELOAD=0): each task's log then keeps what its "
        f"import prints]\n"
    )


def _size_after(sink: Any) -> int:
    here = sink.tell()
    end = sink.seek(0, os.SEEK_END)
    sink.seek(here)
    return int(end - here)


def _lines_after(sink: Any) -> int:
    count = 0
    while chunk := sink.read(1 << 20):
        count += chunk.count(b"\n")
    return count


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # its owner decides when it ends
    sock = socket.socket(fileno=int(argv[0]))
    zygote = _Zygote(sock)
    signal.signal(signal.SIGCHLD, zygote.reap)
    failed = {}
    for name in argv[1:]:  # what every child needs: imported once, here
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - its children will say it again
            failed[name] = f"{type(exc).__name__}: {exc}"
    zygote.say(("ready", os.getpid(), failed))
    zygote.serve()
    # nothing to flush (its streams are /dev/null) and nothing of the modules it imported
    # to finalize (their exit handlers are their tasks', not the server's): gone at once,
    # not after tearing down every module of a run's libraries
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
