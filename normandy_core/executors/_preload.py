"""The run's process modules, imported once, in the fork server, before it forks a worker.

Importing a process module can cost seconds (pandas, scikit-learn, matplotlib), often more
than the work of its tasks. Imported in each worker, that cost is paid once per worker (and
again by every worker that replaces one). Imported in the fork server, it is paid once per
run: every worker is forked with the modules already there.

The fork server starts first thing in ``normandy run``, before the project is read, so it
cannot be told at its start which modules the run needs. Instead its last preload,
:mod:`normandy_core.executors._preload_hook`, asks the orchestrator through a Unix socket
made for it (:func:`open_channel`, its path in the server's environment) and waits. The
orchestrator answers once its first task is submitted (:func:`release`) with the list —
so a run that ends up running nothing, every task reused, imports nothing — and the server
imports each module, then sends back what it did (:func:`serve`), which the run's log
shows. Workers cannot be forked until the server is done: the first tasks wait for the
imports, then none of them pays any.

What can go wrong, and what happens:

- a module that fails to import is noted in the log, and is not imported: the worker of a
  task that uses it imports it and fails that task with the import's real traceback;
- the orchestrator is gone (killed, or it exited before answering): the socket's end
  tells the server, which goes on without importing (and ends, as it always does, when
  the orchestrator's end of its ``alive`` pipe closes);
- what a module prints or logs while imported goes to the run's log, never to
  ``normandy``'s own output;
- a module that starts threads when imported leaves them in the fork server only (a fork
  copies the calling thread alone): the log says so, with how to turn preloading off
  (``confs.preload: false`` or ``NORMANDY_PRELOAD=0``).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

OPT_OUT = "NORMANDY_PRELOAD"
"""Set to ``0`` (or ``false``, ``no``, ``off``), ``normandy run`` preloads nothing."""

SOCKET = "NORMANDY_PRELOAD_SOCKET"
"""Where the fork server asks for its list (set in its environment only)."""

_ACCEPT_WAIT = 60.0
"""Seconds the orchestrator waits for the fork server to ask (it asks as soon as it has
started: a server that has not asked in that time is gone, or was started without us)."""

_channel: _Channel | None = None


def disabled(environ: Any = None) -> bool:
    """Whether the user turned preloading off (``NORMANDY_PRELOAD=0``)."""
    value = (environ if environ is not None else os.environ).get(OPT_OUT, "")
    return value.strip().lower() in ("0", "false", "no", "off")


class _Channel:
    """The orchestrator's end: a listening socket in a private temporary folder."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="normandy-preload-")
        self.path = os.path.join(self.folder, "s")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(1)
        self.released = False
        atexit.register(self.close)

    def close(self) -> None:
        """Without an answer, a waiting server goes on without importing anything."""
        with contextlib.suppress(OSError):
            self.listener.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def open_channel() -> str | None:
    """Make the socket a fork server about to start will ask on; its path (for the
    server's environment), or ``None`` where preloading is turned off or a channel was
    made already (one fork server per ``normandy`` process)."""
    global _channel
    if _channel is not None or disabled():
        return None
    try:
        _channel = _Channel()
    except OSError:  # no temporary folder, no Unix sockets: workers import for themselves
        return None
    return _channel.path


def release(
    modules: Sequence[str],
    sys_path: Sequence[str],
    report: Callable[[dict[str, Any]], None],
) -> bool:
    """Tell the waiting fork server to import ``modules`` (with ``sys_path`` first on its
    path), in a thread of this process; ``report(reply)`` gets what it did once it is
    done (see :func:`serve`). Only the first call answers; returns whether it did."""
    channel = _channel
    if channel is None or channel.released:
        return False
    channel.released = True
    order = {"modules": list(dict.fromkeys(modules)), "sys_path": list(sys_path)}
    threading.Thread(
        target=_answer, args=(channel, order, report), name="normandy-preload", daemon=True
    ).start()
    return True


def _answer(
    channel: _Channel, order: dict[str, Any], report: Callable[[dict[str, Any]], None]
) -> None:
    reply: dict[str, Any] = {}
    try:
        channel.listener.settimeout(_ACCEPT_WAIT)
        conn, _ = channel.listener.accept()
        with conn:
            conn.settimeout(None)
            conn.sendall(json.dumps(order).encode() + b"\n")
            reply = json.loads(_read_line(conn) or b"{}")
    except (OSError, ValueError) as exc:
        reply = {"error": f"the fork server did not answer: {exc}"}
    finally:
        channel.close()
    report(reply)


class Second:
    """A second fork server (see :mod:`normandy_core.executors._forkserver`): the context
    of the processes forked from it, the modules it imports, and once it is done
    (``ready``), those it imported."""

    def __init__(self, context: Any, modules: Sequence[str]) -> None:
        self.context = context
        self.modules = tuple(modules)
        self.ready = threading.Event()
        self.imported: frozenset[str] = frozenset()
        self.ok = False

    def done(self, reply: dict[str, Any]) -> None:
        self.imported = frozenset(reply.get("imported", {}))
        self.ok = "error" not in reply and bool(self.imported)
        self.ready.set()


_second: Second | None = None


def start_second(
    modules: Sequence[str], sys_path: Sequence[str], report: Callable[[dict[str, Any]], None]
) -> Second | None:
    """Start a second fork server importing ``modules`` (after :func:`release` told the
    first to import only some); ``report(reply)`` once it is done. ``None`` where a second
    server cannot be had here."""
    global _second
    from normandy_core.executors._forkserver import second_context

    if _second is not None:
        return None
    try:
        channel = _Channel()
    except OSError:
        return None
    context = second_context(channel.path)
    if context is None:
        channel.close()
        return None
    second = _second = Second(context, modules)
    order = {"modules": list(dict.fromkeys(modules)), "sys_path": list(sys_path)}

    def reported(reply: dict[str, Any]) -> None:
        second.done(reply)
        report(reply)

    threading.Thread(
        target=_answer, args=(channel, order, reported), name="normandy-preload-2", daemon=True
    ).start()
    return second


def second() -> Second | None:
    """The second fork server of this process, if one was started."""
    return _second


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


# -- in the fork server ------------------------------------------------------------------------


def serve(path: str) -> None:
    """Ask the orchestrator at ``path`` for the modules to import, import them, and reply
    ``{"seconds": total, "imported": {module: seconds}, "failed": {module: error},
    "output": what they printed, "threads": [names]}``. Never raises: the fork server
    must start whatever happens here."""
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
    except OSError:
        return  # the orchestrator is gone, or released the server already
    with conn:
        try:
            order = json.loads(_read_line(conn) or b"{}")
        except (OSError, ValueError):
            return  # it went without answering: nothing to import
        modules = [m for m in order.get("modules", []) if isinstance(m, str)]
        if not modules:
            return
        for entry in reversed(order.get("sys_path", [])):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        try:
            reply = _import_all(modules, conn)
        except Exception as exc:  # noqa: BLE001 - the server must start whatever happens
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(reply).encode() + b"\n")


class _OutOfTime(BaseException):
    """The imports ran past :data:`BUDGET`."""


BUDGET = 60.0
"""Seconds the fork server may spend importing (``NORMANDY_PRELOAD_BUDGET`` to change it):
no worker can start meanwhile, so a module that hangs when imported (waiting on the
network…) must not hang the run. The module being imported then is given up, and those
after it are left out; their tasks' workers import them, under the tasks' timeouts."""


def _budget() -> float:
    try:
        return max(0.001, float(os.environ.get("NORMANDY_PRELOAD_BUDGET", BUDGET)))
    except ValueError:
        return BUDGET


def _out_of_time(signum: int, frame: Any) -> None:
    raise _OutOfTime


def _import_all(modules: list[str], conn: socket.socket) -> dict[str, Any]:
    import importlib
    import signal

    imported: dict[str, float] = {}
    failed: dict[str, str] = {}
    before = {t.ident for t in threading.enumerate()}
    began = time.perf_counter()
    previous = signal.signal(signal.SIGALRM, _out_of_time)
    budget = _budget()
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        with _captured() as output:
            for name in modules:
                if _gone(conn):  # the orchestrator ended: nobody will fork a worker
                    break
                start = time.perf_counter()
                try:
                    importlib.import_module(name)
                except _OutOfTime:
                    failed[name] = f"still importing after {budget:g} s: given up"
                    break
                except BaseException as exc:  # noqa: BLE001 - SystemExit at import included
                    failed[name] = f"{type(exc).__name__}: {exc}"
                    continue
                imported[name] = round(time.perf_counter() - start, 4)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    threads = [t.name for t in threading.enumerate() if t.ident not in before]
    return {
        "seconds": round(time.perf_counter() - began, 4),
        "imported": imported,
        "failed": failed,
        "output": output.text,
        "threads": threads,
    }


def _gone(conn: socket.socket) -> bool:
    """Whether the orchestrator closed its end (it sends nothing more after the order)."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class _Output:
    text = ""


@contextlib.contextmanager
def _captured() -> Iterator[_Output]:
    """Descriptors 1 and 2 into a temporary file for the time of the imports: what a module
    prints is the run's log's, not ``normandy``'s stdout."""
    found = _Output()
    _flush()
    with tempfile.TemporaryFile() as sink:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield found
        finally:
            _flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            found.text = sink.read(1 << 20).decode(errors="replace")


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()


def describe(reply: dict[str, Any], where: str = "the fork server") -> list[tuple[bool, str]]:
    """The lines a run's log gets for a fork server's reply: ``(is_warning, text)``."""
    lines: list[tuple[bool, str]] = []
    if "error" in reply:
        lines.append((False, f"preloading: {reply['error']}; each worker imports for itself"))
        return lines
    imported = reply.get("imported", {})
    if imported:
        names = ", ".join(imported)
        lines.append(
            (
                False,
                f"preloaded {len(imported)} module{'s' * (len(imported) != 1)} in {where} in "
                f"{reply.get('seconds', 0):.2f} s (workers start with them): {names}",
            )
        )
    for name, error in reply.get("failed", {}).items():
        lines.append(
            (
                False,
                f"could not preload {name} ({error}): the tasks using it import it "
                f"in their worker",
            )
        )
    output = reply.get("output", "").strip()
    if output:
        lines.append((False, f"output of the preloaded modules:\n{output}"))
    threads = reply.get("threads", [])
    if threads:
        lines.append(
            (
                True,
                f"preloading started threads in {where} ({', '.join(threads)}); the "
                f"workers forked from it do not have them. If a process needs them, turn "
                f"preloading off: confs.preload: false, or NORMANDY_PRELOAD=0",
            )
        )
    return lines
