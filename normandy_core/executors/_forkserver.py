"""The fork servers the ``local`` executor's workers start from.

Workers are forked from a fork server, not from the orchestrator: the orchestrator runs
threads (the log listener, the pool's managers), and forking a threaded process can copy a
lock in the middle of its use. The server is a fresh interpreter that has imported what
every worker needs, so a new worker costs a fork and nothing more.

A run whose first step needs fewer process modules than the rest has a second server
(:func:`second_context`): the first imports what the first step needs and forks its
workers, while the second imports every module of the run; the pool moves to workers of
the second once it has (see :mod:`normandy_core.executors._preload`).
"""

from __future__ import annotations

import io
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import multiprocessing.popen_forkserver
import os
import sys
from typing import Any

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


# -- a second fork server ---------------------------------------------------------------------

_second: multiprocessing.forkserver.ForkServer | None = None


def second_context(socket: str) -> multiprocessing.context.BaseContext | None:
    """Start a second fork server, whose preload hook asks on ``socket`` what to import;
    the multiprocessing context of processes forked from it. ``None`` where this Python's
    multiprocessing is not the one this was written against (3.10 to 3.13), or a second
    server runs already."""
    global _second
    from normandy_core.executors._preload import SOCKET

    if _second is not None or not (3, 10) <= sys.version_info[:2] <= (3, 13):
        return None
    server = multiprocessing.forkserver.ForkServer()
    server.set_forkserver_preload(_PRELOAD)
    os.environ[SOCKET] = socket  # in the server's environment only: it is spawned now
    try:
        server.ensure_running()
    finally:
        os.environ.pop(SOCKET, None)
    _second = server
    return _SecondContext()


class _SecondPopen(multiprocessing.popen_forkserver.Popen):
    """multiprocessing's ``Popen`` of the fork server method, asking the second server."""

    def _launch(self, process_obj: Any) -> None:  # as CPython's, but for the server
        from multiprocessing import reduction, spawn, util
        from multiprocessing.context import set_spawning_popen

        assert _second is not None
        prep_data = spawn.get_preparation_data(process_obj._name)
        buf = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        self.sentinel, w = _second.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        parent_w = os.dup(w)
        self.finalizer = util.Finalize(
            self, util.close_fds, (parent_w, self.sentinel)  # type: ignore[attr-defined]
        )
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = multiprocessing.forkserver.read_signed(self.sentinel)


class _SecondProcess(multiprocessing.context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> _SecondPopen:  # noqa: N802 - multiprocessing's name
        return _SecondPopen(process_obj)


class _SecondContext(multiprocessing.context.ForkServerContext):
    Process = _SecondProcess  # type: ignore[assignment]
