"""The fork server the ``local`` executor's workers start from.

Workers are forked from a fork server, not from the orchestrator: the orchestrator runs
threads (the log listener, the pool's managers), and forking a threaded process can copy a
lock in the middle of its use. The server is a fresh interpreter that has imported what
every worker needs, so a new worker costs a fork and nothing more.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os

# pebble's worker loop is unpickled in every worker: importing pebble once in the server
# spares each worker that import (asyncio and all, some 40 ms); ctypes is how a worker
# becomes a subreaper and flushes the C library's buffers (see executors._pool, _capture).
# Last, the hook that imports the run's process modules once the orchestrator names them
# (see executors._preload).
_PRELOAD = [
    "normandy_core.worker",
    "normandy_core.executors._pool",
    "pebble",
    "ctypes",
    "normandy_core.executors._preload_hook",
]


def mp_context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context of the workers (and of the log queue they write to)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def warm_up() -> None:
    """Start the fork server now, in the background, instead of at the first task: its
    interpreter start-up and imports then overlap with loading and checking the project,
    and it waits, once started, to be told which process modules to import
    (:func:`normandy_core.executors._preload.release`, at the first task). Calling it
    again, or before a run that ends up not using it, is harmless."""
    from normandy_core.executors._preload import SOCKET, open_channel

    mp_context()
    path = open_channel()
    if path is None:
        multiprocessing.forkserver.ensure_running()
        return
    os.environ[SOCKET] = path  # in the server's environment only: it is spawned now
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        os.environ.pop(SOCKET, None)
