"""The engine kit: what an execution engine needs to run Normandy's tasks with Normandy's
guarantees, wherever it runs them. The ``local`` executor is built from it, and so is the
``dask`` engine; a third engine (a job queue, Kubernetes jobs…) uses the same pieces:

- :class:`ChildPool` — worker processes that run :class:`~normandy_core.worker.TaskCall`
  objects: each attempt in a process that a timeout, a crash or a cancel kills with
  everything it started; workers forked from a fork server of the pool's own, which can
  import the project's code once for all of them (:meth:`ChildPool.prepare`), and that
  die with the pool's owner however it dies. Its futures end with the attempt's
  :class:`~normandy_core.worker.TaskResult`, :class:`WorkerCrashed` or
  :class:`TaskTimedOut`.
- :class:`RecordRelay` — the log records of a pool's tasks (their lines, and the notice of
  each attempt's start) forwarded in batches to wherever the orchestrator reads them, and a
  way to wait until an attempt's records are all sent before answering for it (so that a
  task's lines come before the orchestrator's line about it).
- :func:`record_to_dict` / :func:`dict_to_record` — a record as plain data, for a transport
  that does not pickle (JSON, a Dask event).

In the orchestrator, an engine puts every record that comes back on ``setup.log_queue``
(:class:`~normandy_core.executors.WorkerSetup`): they reach the console and the log files,
and the start notices among them tell the orchestrator which attempt runs where, since when.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any

from normandy_core._packets import PacketQueue
from normandy_core.executors import TaskTimedOut, WorkerCrashed
from normandy_core.executors.local._pool import BASE, WorkerPool
from normandy_core.executors.local._server import ForkServer
from normandy_core.executors.local._wire import AttemptEnd
from normandy_core.executors.local._worker import Boot
from normandy_core.logs import is_lines, lines_records, start_notice
from normandy_core.worker import TaskCall, TaskResult

__all__ = [
    "AttemptEnd",
    "ChildPool",
    "RecordRelay",
    "TaskTimedOut",
    "WorkerCrashed",
    "dict_to_record",
    "record_to_dict",
    "start_notice",
]


class ChildPool:
    """``size`` worker processes running task calls (see the module's docstring).

    ``log_queue`` receives the records of the tasks: a queue between processes (the
    run's own, ``setup.log_queue``, for an engine in the orchestrator; a
    :class:`RecordRelay`'s, with ``mark_ends``, for one that forwards them from
    elsewhere). ``sys_path``: folders the workers import from first (the project's root
    and ``src/``)."""

    def __init__(
        self,
        size: int,
        log_queue: Any,
        sys_path: Iterable[str] = (),
        *,
        mark_ends: bool = False,
    ) -> None:
        self._mark_ends = mark_ends
        self._pool = WorkerPool(
            size, log_queue.writer, Boot(tuple(sys_path)), lambda: ForkServer(BASE)
        )

    def prepare(self, modules: Sequence[str]) -> None:
        """Have the pool's fork server import ``modules`` for the workers forked after."""
        self._pool.prepare(modules)

    def submit(self, call: TaskCall, timeout: float | None = None) -> Future[TaskResult]:
        """Run one attempt; the future ends with its result, :class:`WorkerCrashed` (its
        worker died: ``exitcode``, ``pid``) or :class:`TaskTimedOut`. Cancelling it stops
        the worker running it."""
        return self._pool.submit(call, timeout, mark_ends=self._mark_ends)

    def close(self, *, cancel: bool = False, timeout: float | None = None) -> None:
        """Stop the workers (with ``cancel``, the running tasks too; else once they end);
        what their tasks started is killed, and a worker that will not stop dies."""
        self._pool.close(cancel=cancel, timeout=timeout)

    def kill_now(self) -> None:
        """SIGKILL every worker at once (from a signal's handler: takes no lock)."""
        self._pool.kill_now()


class RecordRelay:
    """Forwards the records a :class:`ChildPool` (made with ``mark_ends`` and this relay's
    :attr:`queue`) puts on its queue, calling ``send(records)`` with batches of at most
    ``batch`` records as plain data (:func:`record_to_dict`), from a thread of its own.
    A ``send`` that raises is logged and the relay goes on."""

    def __init__(
        self, send: Callable[[list[dict[str, Any]]], None], *, batch: int = 200, name: str = ""
    ) -> None:
        self.queue: Any = PacketQueue()  # a killed worker cannot block it
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
