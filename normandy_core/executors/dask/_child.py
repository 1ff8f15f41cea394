"""In the child processes a Dask worker runs its attempts in (see :mod:`._remote`)."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from normandy_core.executors.dask._protocol import End
from normandy_core.worker import TaskCall, TaskResult, init_worker, run_task

_queue: Any = None


def init_child(log_queue: Any, lifeline: Any) -> None:
    """Pool initializer: the ``local`` executor's (the child leads its own process group,
    and SIGTERM kills that group), and death with the Dask worker.

    ``lifeline`` is the reading end of a pipe whose writing end only the Dask worker
    holds: it reads end-of-file when that worker dies, however it dies, and the child then
    kills its group — the task and whatever it started. (The child's parent is the worker's
    fork server, not the worker, and the fork server lives as long as any child does: a
    parent-death signal would never come.)
    """
    global _queue
    _queue = log_queue
    init_worker(log_queue, ())
    threading.Thread(target=_watch, args=(lifeline,), name="normandy-lifeline", daemon=True).start()


def run_in_child(call: TaskCall) -> TaskResult:
    try:
        return run_task(call)
    finally:
        _queue.put(End(call.key, call.attempt))  # after every record of this attempt


def _watch(lifeline: Any) -> None:
    try:
        while True:
            lifeline.recv_bytes()
    except (EOFError, OSError):
        pass
    os.killpg(0, signal.SIGKILL)
