"""A worker process, forked from a fork server: runs one task call at a time for its pool.

As it starts, a worker:

- leads a process group of its own: a task's subprocesses are in it, and a signal meant
  for ``normandy``'s group (Ctrl-C in a terminal) does not reach it;
- is a child subreaper (:func:`~normandy_core._children.become_subreaper`): what a task
  started and orphaned is found below it when the task ends;
- on SIGTERM kills everything below it, then itself;
- watches its *lifeline*, a pipe whose only writing end is its pool's owner's: reading its
  end means the owner is gone, however it went (SIGKILL included), and the worker kills
  everything below it and exits at once.

Then it answers its pool on its socket: ``("run", call, mark_ends)`` →
``("done", result)``; ``("stop",)`` or the socket's end → it exits.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from normandy_core._children import become_subreaper, kill_below
from normandy_core._packets import PacketQueue
from normandy_core.executors.local._wire import AttemptEnd, receive_plain, send
from normandy_core.worker import TaskCall, TaskResult, init_worker, run_task


@dataclass(frozen=True)
class Boot:
    """What a worker is told as it starts: its import path, whether to mark the end of
    each attempt's records on the log queue, and its ``PYTHONPATH``."""

    sys_path: tuple[str, ...] = ()
    mark_ends: bool = False
    python_path: str | None = None
    """``PYTHONPATH`` for what its tasks start: the run's import path as the run began
    (its server may have started before the project's folders were on it)."""


def serve(fds: list[int], boot: Boot) -> None:
    """The worker's life (``fds``: its socket, the log queue's writing end, the lifeline)."""
    conn_fd, log_fd, lifeline = fds
    os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, _end_everything)
    become_subreaper()
    conn = socket.socket(fileno=conn_fd)
    watcher = threading.Thread(target=_watch, args=(lifeline,), name="normandy-lifeline")
    watcher.daemon = True
    watcher.start()
    queue = PacketQueue.writing_to(log_fd)
    if boot.python_path is not None:
        os.environ["PYTHONPATH"] = boot.python_path
    try:
        init_worker(queue, boot.sys_path)
    except BaseException:  # noqa: BLE001 - its pool says why its tasks cannot run
        send(conn, ("broken", traceback.format_exc()))
        return
    send(conn, ("ready", os.getpid()))
    while True:
        try:
            message = receive_plain(conn)
        except (EOFError, OSError):
            return
        if message[0] != "run":
            return
        _, call, mark_ends = message
        result = _attempt(call)
        if mark_ends:
            queue.put(AttemptEnd(call.key, call.attempt))  # after every record of it
        send(conn, ("done", result))


def _attempt(call: TaskCall) -> TaskResult:
    try:
        return run_task(call)
    except BaseException as exc:  # noqa: BLE001 - run_task reports the process's own
        now = time.time()
        return TaskResult(
            key=call.key,
            ok=False,
            pid=os.getpid(),
            started=now,
            ended=now,
            error_type=type(exc).__name__,
            error_message=f"the worker could not run it: {exc}",
            traceback=traceback.format_exc(),
        )


def _end_everything(signum: int, frame: Any) -> None:
    """Everything below this worker, then the worker itself (never whoever started it)."""
    if os.getpgid(0) == os.getpid():
        kill_below(os.getpid())
    os._exit(128 + signum)


def _watch(lifeline: int) -> None:
    """Until the pool's owner is gone (end of file: every writing end is closed)."""
    try:
        while os.read(lifeline, 64):
            pass
    except OSError:
        pass
    _end_everything(signal.SIGKILL, None)
