"""A pebble pool of worker processes that cannot outlive their owner, nor leave their
tasks' processes behind (SPEC 7, 11). The ``local`` executor runs one in the
orchestrator; each Dask worker runs one per run (:mod:`.dask._remote`).

Every worker:

- leads its own process group: a task's subprocesses are in it, and a signal meant for
  ``normandy``'s group (Ctrl-C in a terminal) does not reach the worker;
- on SIGTERM (how pebble stops a worker at a timeout, a cancel or the pool's end) kills its
  whole group, itself included;
- is a child subreaper (:func:`~normandy_core._children.become_subreaper`), so that what a
  task started and orphaned is still found below it when the task ends;
- watches a *lifeline*: the reading end of a pipe whose only writing end is held by the
  pool's owner. Reading end-of-file means the owner is gone, however it went (SIGKILL
  included): the worker kills its group at once. (A worker's parent is the fork server,
  not the owner, and the fork server lives as long as any worker does: a parent-death
  signal would never come.)

The pool's side does not rely on the worker's SIGTERM handler, which a task may have
replaced or ignored: each worker tells its pid on a *roster* pipe as it starts, and once a
worker is gone (timed out, crashed, stopped), :meth:`WorkerPool.sweep` SIGKILLs what is
left of its group.

pebble's pool has a race, closed here (:func:`_match_dead_workers`): it reads that a worker
took a task (the worker's *acknowledgement*) in one thread, and finds dead workers in
another. A worker that dies right after taking a task — a crash at the task's first line
— may be found dead before its acknowledgement is read: pebble then cannot match it to
its task, and either leaves the task pending for ever (when another task is running: the
run hangs) or breaks the whole pool, failing every task ("All workers expired"). Here
such a death is remembered, and the task is failed as crashed, with its exit code, as
soon as its acknowledgement is read.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from types import ModuleType
from typing import Any

from normandy_core._children import become_subreaper, kill_group
from normandy_core.executors._forkserver import mp_context

__all__ = ["WorkerPool", "pebble"]

_PID = struct.Struct("<q")


def pebble() -> ModuleType:
    """pebble, imported when a pool starts: ``validate`` lists the executors without it."""
    import pebble

    # pebble's manager threads poll every ``sleep_unit`` seconds (0.1 by default): that is
    # how long a pool takes to stop, and how late a crash or a timeout is seen. 10 ms keeps
    # both small for a cost of a hundred cheap checks a second in one thread.
    pebble.CONSTS.sleep_unit = 0.01
    return pebble


class WorkerPool:
    """``size`` worker processes, each set up by ``initializer(*initargs)`` after joining
    (see the module's docstring). ``context``: the multiprocessing context of the workers
    (the fork server's by default)."""

    def __init__(
        self,
        size: int,
        initializer: Callable[..., None],
        initargs: Iterable[Any] = (),
        context: Any = None,
    ) -> None:
        context = context or mp_context()
        module = pebble()
        self.expired: Any = module.ProcessExpired
        """The error of a task whose worker died: ``exitcode``, ``pid``."""
        # Only this process holds the lifeline's writing end: the workers are started by a
        # fork server, which inherits nothing but the reading end passed to each worker.
        lifeline, self._alive = context.Pipe(duplex=False)
        self._roster, roster = context.Pipe(duplex=False)
        self._groups: set[int] = set()
        self._lock = threading.Lock()
        self.pool = module.ProcessPool(
            max_workers=size,
            initializer=_join,
            initargs=(lifeline, roster, initializer, tuple(initargs)),
            context=context,
        )
        _match_dead_workers(self.pool, size)

    def schedule(
        self, function: Callable[..., Any], args: Iterable[Any], timeout: float | None
    ) -> Future[Any]:
        """pebble's ``schedule``; once the future ends otherwise than with the function's
        return (a timeout, a crash, a cancel), what the stopped worker's task started is
        killed before the future's other callbacks run."""
        self.sweep()  # what a worker stopped since left behind (a cancelled task's)
        future: Future[Any] = self.pool.schedule(function, args=tuple(args), timeout=timeout)
        future.add_done_callback(self._ended)
        return future

    def _ended(self, future: Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            self.sweep()

    def sweep(self) -> None:
        """SIGKILL what is left of the group of every worker that is gone."""
        with self._lock:
            with contextlib.suppress(OSError, EOFError):
                while self._roster.poll(0):
                    self._groups.add(_PID.unpack(self._roster.recv_bytes())[0])
            self._groups = {pid for pid in self._groups if not kill_group(pid)}

    def close(self, *, cancel: bool = False, timeout: float | None = None) -> None:
        """Stop the pool (with ``cancel``, the running tasks too; else once they end), kill
        what the workers' tasks left, and cut the lifeline: a worker still there dies."""
        try:
            if cancel:
                self.pool.stop()
            else:
                self.pool.close()
            with contextlib.suppress(TimeoutError):
                self.pool.join(timeout)
            self.sweep()
        finally:
            self._alive.close()


def _join(
    lifeline: Any, roster: Any, initializer: Callable[..., None], initargs: tuple[Any, ...]
) -> None:
    """The pool initializer, in each worker: lead a group, tell the pool, watch the
    lifeline, then the caller's ``initializer``."""
    os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, _kill_group)
    become_subreaper()
    roster.send_bytes(_PID.pack(os.getpid()))
    roster.close()
    threading.Thread(target=_watch, args=(lifeline,), name="normandy-lifeline", daemon=True).start()
    initializer(*initargs)


def _kill_group(signum: int, frame: Any) -> None:
    if os.getpgid(0) == os.getpid():  # never the group of whoever started us
        os.killpg(0, signal.SIGKILL)
    os._exit(128 + signum)


def _watch(lifeline: Any) -> None:
    """Until the pool's owner is gone (end-of-file: every writing end is closed)."""
    try:
        while True:
            lifeline.recv_bytes()
    except (EOFError, OSError):
        pass
    _kill_group(signal.SIGKILL, None)


# -- pebble's race (see the module's docstring) -----------------------------------------------

_ORPHAN_TTL = 10.0
"""Seconds a dead worker that no task was matched to waits for its acknowledgement."""

_managers: dict[type, type] = {}


def _match_dead_workers(pool: Any, size: int) -> None:
    """Give ``pool`` a manager that matches every dead worker to its task, whatever order
    pebble reads of them in. pebble's ``PoolManager`` is private: the versions this works
    with are pinned in ``setup.cfg``, and ``tests/core/test_pool.py`` forces the race."""
    manager = pool._pool_manager
    base = type(manager)
    if base not in _managers:
        _managers[base] = _matching_manager(base)
    manager.__class__ = _managers[base]
    manager.orphans = {}  # dead worker's pid -> (its exit code, when it was found dead)
    manager.orphans_lock = threading.Lock()
    manager.orphans_limit = size + 1


def _matching_manager(base: type) -> type:
    process = sys.modules[base.__module__]

    class MatchingManager(base):  # type: ignore[valid-type,misc]
        orphans: dict[int, tuple[int | None, float]]
        orphans_lock: threading.Lock
        orphans_limit: int

        def handle_worker_expiration(self, expiration: tuple[int, int | None]) -> None:
            """In the pool's manager thread: a worker is dead."""
            worker, exitcode = expiration
            with self.orphans_lock:
                task = self._running(worker)
                if task is None:
                    self._orphan(worker, exitcode)
                    return
            self._expired(task, worker, exitcode)

        def process_next_message(self, timeout: float) -> None:
            """In the pool's message thread: what a worker said."""
            message = self.worker_manager.receive(timeout)
            if isinstance(message, process.Acknowledgement):
                with self.orphans_lock:
                    self.task_manager.task_start(message.task, message.worker)
                    orphan = self.orphans.pop(message.worker, None)
                    task = self.task_manager.tasks.get(message.task)
                if orphan is not None and task is not None:  # it died with this task
                    self._expired(task, message.worker, orphan[0])
            elif isinstance(message, process.TaskResult):
                self.task_manager.task_done(message.task, message.result)
            elif isinstance(message, process.TaskProblem):
                self.task_manager.task_problem(message.task, message.error)

        def _running(self, worker: int) -> Any:
            for task in list(self.task_manager.tasks.values()):
                if task.worker_id == worker:
                    return task
            return None

        def _orphan(self, worker: int, exitcode: int | None) -> None:
            """A dead worker no task was matched to (yet): its acknowledgement may still
            come. Workers dying faster than any can take a task (a failing initializer)
            break the pool, as pebble does."""
            now = time.monotonic()
            self.orphans = {w: o for w, o in self.orphans.items() if now - o[1] < _ORPHAN_TTL}
            self.orphans[worker] = (exitcode, now)
            if len(self.orphans) > self.orphans_limit:
                raise BrokenProcessPool("All workers expired")

        def _expired(self, task: Any, worker: int, exitcode: int | None) -> None:
            error = process.ProcessExpired("Abnormal termination", code=exitcode, pid=worker)
            self.task_manager.task_done(task.id, process.Result(process.ResultStatus.ERROR, error))

    return MatchingManager
