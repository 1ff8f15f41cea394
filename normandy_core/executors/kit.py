"""The engine kit: what an execution engine needs to run Normandy's tasks with Normandy's
guarantees, wherever it runs them. The ``local`` executor is built from it, and so is the
``dask`` engine; a third engine (a job queue, Kubernetes jobs…) uses the same pieces:

- :class:`ChildPool` — worker processes that run :class:`~normandy_core.worker.TaskCall`
  objects: each attempt in a process that a timeout, a crash or a cancel kills with
  everything it started; workers that import the project's code once, and die with the
  pool's owner however it dies. Its futures end with the attempt's
  :class:`~normandy_core.worker.TaskResult`, :class:`WorkerCrashed` or :class:`TaskTimedOut`.
- :class:`RecordRelay` — the log records of a pool's tasks (their lines, and the notice of
  each attempt's start) forwarded in batches to wherever the orchestrator reads them, and a
  way to wait until an attempt's records are all sent before answering for it (so that a
  task's lines come before the orchestrator's line about it).
- :func:`record_to_dict` / :func:`dict_to_record` — a record as plain data, for a transport
  that does not pickle (JSON, a Dask event).
- :func:`warm_up` — start the fork server that pools fork their workers from, and
  :func:`preload` — have it import the run's process modules once, for every worker.

In the orchestrator, an engine puts every record that comes back on ``setup.log_queue``
(:class:`~normandy_core.executors.WorkerSetup`): they reach the console and the log files,
and the start notices among them tell the orchestrator which attempt runs where, since when.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any

from normandy_core._packets import PacketQueue
from normandy_core.executors import TaskTimedOut, WorkerCrashed
from normandy_core.executors._forkserver import mp_context, warm_up
from normandy_core.executors._pool import WorkerPool
from normandy_core.executors._preload import (
    BUDGET,
    describe,
    release,
    second,
    start_second,
    wait_reported,
)
from normandy_core.logs import is_lines, lines_records, start_notice
from normandy_core.worker import TaskCall, TaskResult, init_worker, run_task

__all__ = [
    "ChildPool",
    "RecordRelay",
    "TaskTimedOut",
    "WorkerCrashed",
    "dict_to_record",
    "mp_context",
    "preload",
    "record_to_dict",
    "start_notice",
    "warm_up",
]

_log_queue: Any = None  # in a worker of a pool whose ends are marked


@dataclass(frozen=True)
class AttemptEnd:
    """Put on a pool's log queue after every record of an attempt (``mark_ends``)."""

    key: str
    attempt: int


class ChildPool:
    """``size`` worker processes running task calls (see the module's docstring).

    ``log_queue`` receives the records of the tasks: the run's own queue for an engine in
    the orchestrator (``setup.log_queue``), or a :class:`RecordRelay`'s queue for one that
    forwards them from elsewhere (then ``mark_ends``). ``sys_path``: folders the workers
    import from first (the project's root and ``src/``). ``preload``: modules the fork
    server imports before it forks the first worker, where ``normandy run`` started it
    (:func:`warm_up`; see :mod:`normandy_core.executors._preload`): it is told at the
    first :meth:`submit` (with nothing to import, where ``preload`` is empty), and what it
    did is logged on ``log_queue``. ``first``: those of them the first tasks need, where
    fewer (see :func:`preload`): once a task needs a module its workers lack and none is
    running, the pool moves to workers of the server that imported them all.
    """

    def __init__(
        self,
        size: int,
        log_queue: Any,
        sys_path: Iterable[str] = (),
        *,
        mark_ends: bool = False,
        preload: Iterable[str] = (),
        first: Iterable[str] = (),
    ) -> None:
        self._sys_path = tuple(sys_path)
        self._size = size
        self._initargs = (log_queue, self._sys_path, mark_ends)
        self._pool = WorkerPool(size, _init, self._initargs, mp_context())
        self._run = _run_marked if mark_ends else run_task
        self._log_queue = log_queue
        self._preload: tuple[str, ...] | None = tuple(preload)
        self._first = tuple(first)
        self._have = frozenset(self._first or self._preload)
        self._moved = False
        self._running: set[Future[Any]] = set()

    def submit(self, call: TaskCall, timeout: float | None = None) -> Future[TaskResult]:
        """Run one attempt; the future ends with its result, :class:`WorkerCrashed` (its
        worker died: ``exitcode``, ``pid``) or :class:`TaskTimedOut`. Cancelling it stops
        the worker running it."""
        if self._preload is not None:  # before the first worker is forked
            preload(self._preload, self._sys_path, self._log_queue, call.log_level, self._first)
            self._preload = None
        self._move(call)
        inner = self._pool.schedule(self._run, (call,), timeout)
        self._running.add(inner)
        inner.add_done_callback(self._running.discard)
        outer: Future[TaskResult] = Future()
        expired = self._pool.expired

        def done(f: Future[TaskResult]) -> None:
            if f.cancelled():
                outer.cancel()
                return
            try:
                outer.set_result(f.result())
            except expired as exc:
                outer.set_exception(WorkerCrashed(exc.exitcode, getattr(exc, "pid", None)))
            except concurrent.futures.TimeoutError:
                outer.set_exception(TaskTimedOut(timeout or 0))
            except BaseException as exc:  # the pool could not run it: say what happened
                outer.set_result(not_run(call, exc))

        def cancel(f: Future[TaskResult]) -> None:
            if f.cancelled():
                inner.cancel()

        outer.add_done_callback(cancel)
        inner.add_done_callback(done)
        return outer

    def _move(self, call: TaskCall) -> None:
        """To workers of the second fork server, where ``call`` needs a module this pool's
        workers lack that it imported, and no task runs here (between two steps)."""
        other = second()
        if self._moved or other is None or self._running:
            return
        module = call.target.partition(":")[0]
        if module in self._have or module not in other.modules:
            return
        self._moved = True  # whatever happens now: once
        if not other.ready.wait(BUDGET + 5) or not other.ok:  # it gives up after BUDGET
            return  # its workers import the module themselves
        old = self._pool
        self._pool = WorkerPool(self._size, _init, self._initargs, other.context)
        self._have = other.imported
        old.close()

    def close(self, *, cancel: bool = False, timeout: float | None = None) -> None:
        """Stop the workers (with ``cancel``, the running tasks too; else once they end);
        what their tasks started is killed, and a worker that will not stop dies."""
        self._pool.close(cancel=cancel, timeout=timeout)
        wait_reported(1.0 if cancel else 10.0)  # what the preloaded modules printed is logged


def preload(
    modules: Iterable[str],
    sys_path: Iterable[str],
    log_queue: Any,
    level: int,
    first: Iterable[str] = (),
) -> None:
    """Tell the fork server that :func:`warm_up` started to import ``modules`` now (with
    ``sys_path`` first on its path), for every worker forked from it; what it did is logged
    on ``log_queue`` at ``level``. Only the first call of a process tells it (a
    :class:`ChildPool` calls it at its first task); without a server started by
    :func:`warm_up`, it does nothing. See :mod:`normandy_core.executors._preload`.

    ``first``: the modules the first tasks need, where fewer than ``modules``: the server
    imports only those, so that the first tasks need not wait for the others, and a second
    server imports them all meanwhile, for the workers of the later tasks."""
    modules, first = tuple(modules), tuple(first)
    paths = tuple(sys_path)
    if not first or set(first) >= set(modules):
        release(modules, paths, partial(_preloaded, log_queue, level, "the fork server"))
    elif release(first, paths, partial(_preloaded, log_queue, level, "the fork server")):
        where = "a second fork server, for the later steps' workers"
        start_second(modules, paths, partial(_preloaded, log_queue, level, where))


def _preloaded(log_queue: Any, level: int, where: str, reply: dict[str, Any]) -> None:
    """A fork server's account of its imports, for the run's log (at the run's ``level``,
    as the tasks' records)."""
    for warning, text in describe(reply, where):
        levelno = logging.WARNING if warning else logging.INFO
        if levelno < level:
            continue
        record = logging.LogRecord("normandy.preload", levelno, "", 0, text, None, None)
        record.flow, record.key, record.event = None, None, not warning
        try:
            log_queue.put(record)
        except Exception:  # noqa: BLE001 - the run's end closed the queue: not worth more
            return


def not_run(call: TaskCall, exc: BaseException) -> TaskResult:
    """The failure of an attempt that a pool could not run or return, saying why."""
    now = time.time()
    detail = getattr(exc, "traceback", "")  # pebble's: the error's traceback in the child
    return TaskResult(
        key=call.key,
        ok=False,
        pid=0,
        started=now,
        ended=now,
        error_type=type(exc).__name__,
        error_message=f"the child process could not run it: {exc}",
        traceback=detail if isinstance(detail, str) else "",
    )


def _init(log_queue: Any, sys_path: tuple[str, ...], mark_ends: bool) -> None:
    global _log_queue
    _log_queue = log_queue if mark_ends else None
    init_worker(log_queue, sys_path)


def _run_marked(call: TaskCall) -> TaskResult:
    try:
        return run_task(call)
    finally:
        _log_queue.put(AttemptEnd(call.key, call.attempt))  # after every record of it


class RecordRelay:
    """Forwards the records a :class:`ChildPool` (made with ``mark_ends`` and this relay's
    :attr:`queue`) puts on its queue, calling ``send(records)`` with batches of at most
    ``batch`` records as plain data (:func:`record_to_dict`), from a thread of its own.
    A ``send`` that raises is logged and the relay goes on."""

    def __init__(
        self, send: Callable[[list[dict[str, Any]]], None], *, batch: int = 200, name: str = ""
    ) -> None:
        self.queue: Any = PacketQueue(mp_context())  # a killed worker cannot block it
        self._send = send
        self._batch = batch
        self._ends: dict[tuple[str, int], threading.Event] = {}
        self._idle = threading.Condition()
        self._busy = False
        self._thread = threading.Thread(
            target=self._forward, name=f"normandy-relay-{name}", daemon=True
        )
        self._thread.start()

    def expect(self, call: TaskCall) -> threading.Event:
        """An event set once every record of ``call``'s attempt has been sent: ask before
        submitting the attempt."""
        return self._ends.setdefault((call.key, call.attempt), threading.Event())

    def forget(self, call: TaskCall) -> None:
        self._ends.pop((call.key, call.attempt), None)

    def settle(self, within: float = 2.0) -> None:
        """After a worker died: give what it had queued time to be sent."""
        deadline = time.monotonic() + within
        with self._idle:
            while (self._busy or not self.queue.empty()) and time.monotonic() < deadline:
                self._idle.wait(timeout=0.05)

    def close(self) -> None:
        self.queue.put(None)  # the thread's sentinel
        self._thread.join(timeout=2)

    def _forward(self) -> None:
        while True:
            item = self.queue.get()
            with self._idle:
                self._busy = True
            records: list[dict[str, Any]] = []
            ends: list[AttemptEnd] = []
            stop = False
            while True:
                if item is None:
                    stop = True
                    break
                if isinstance(item, AttemptEnd):
                    ends.append(item)
                elif isinstance(item, logging.LogRecord):
                    records.append(record_to_dict(item))
                elif is_lines(item):  # what a task logged or printed: a record per line
                    records.extend(record_to_dict(r) for r in lines_records(item))
                if len(records) >= self._batch or self.queue.empty():
                    break
                item = self.queue.get()
            if records:
                try:
                    self._send(records)
                except Exception:  # a batch that cannot be sent must not stop the others
                    logging.getLogger(__name__).exception("cannot forward log records")
            for end in ends:
                event = self._ends.get((end.key, end.attempt))
                if event is not None:
                    event.set()
            with self._idle:
                self._busy = False
                self._idle.notify_all()
            if stop:
                return


_FIELDS = ("name", "levelno", "levelname", "msg", "created", "msecs", "exc_text")
_WHERE = ("flow", "step", "task", "key")


def record_to_dict(record: logging.LogRecord) -> dict[str, Any]:
    """A task's log record (already masked and formatted in its worker), or the notice of
    an attempt's start (:func:`start_notice`), as plain data."""
    data: dict[str, Any] = {name: getattr(record, name, None) for name in _FIELDS}
    data["msg"] = str(record.msg)
    for name in _WHERE:
        value = getattr(record, name, None)
        data[name] = None if value is None else str(value)
    if getattr(record, "event", False):
        data["event"] = True
    started = getattr(record, "started", None)
    if started is not None:
        data["started"] = list(started)
    return data


def dict_to_record(data: dict[str, Any]) -> logging.LogRecord:
    """The record :func:`record_to_dict` made, for the run's log queue."""
    record = logging.makeLogRecord(data)
    record.args = None
    if "started" in data:
        record.started = tuple(data["started"])
    return record
