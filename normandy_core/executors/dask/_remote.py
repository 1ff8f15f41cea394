"""In each Dask worker: run an attempt in a child process, forward its log records.

Why a child process per attempt, and not the Dask worker's own thread: a thread cannot be
stopped. A task past its ``timeout``, a run stopped by Ctrl-C, or a process that calls
``os._exit`` or segfaults must cost that task only, never the Dask worker (with its other
tasks and its data). So each Dask worker keeps, per run, a pebble pool of child processes
(as many as it has threads) — the ``local`` executor's pool, with its guarantees: the
processes of a run import the run's code once and are replaced when one is killed, and a
new run gets new processes, so edited code is never served stale from an old import.

Log records cannot reach the orchestrator through a multiprocessing queue from another
machine: the children put them on a queue of their Dask worker, and a thread there sends
them, in batches, as Dask events (``Worker.log_event``) that the orchestrator's client
receives. A child puts an :class:`End` after the records of an attempt, and the attempt's
reply is returned only once that has been sent: the scheduler relays the events before
the task's completion, so a task's lines come before the orchestrator's line about it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import multiprocessing
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from normandy_core._packets import PacketQueue
from normandy_core.executors._forkserver import mp_context
from normandy_core.executors._pool import WorkerPool
from normandy_core.executors.dask._child import init_child, run_in_child
from normandy_core.executors.dask._protocol import (
    CANCELLED,
    CRASHED,
    DONE,
    RERUN,
    TIMED_OUT,
    TOPIC,
    End,
    Reply,
    record_to_dict,
    started_marker,
)
from normandy_core.logs import is_lines, lines_records
from normandy_core.store import place
from normandy_core.worker import TaskCall, TaskResult

IDLE_CLOSE = 600.0
"""Seconds after which the pool of a run that sent no task is closed (its orchestrator
died without saying goodbye)."""

_POLL = 0.2
_BATCH = 200

_slots: dict[str, _RunSlot] = {}
_slots_lock = threading.Lock()


def run_call(call: TaskCall, timeout: float | None) -> Reply:
    """The function Dask runs: one attempt of a task, on this worker, in a child."""
    from distributed import get_worker

    worker = get_worker()
    marker = started_marker(call)
    if marker.exists():
        return Reply(RERUN, worker.address)
    marker.write([b""])
    key = worker.get_current_task()
    slot = _acquire(call.run_id, worker)
    try:
        return slot.run(call, timeout, lambda: _cancelled(worker, key))
    finally:
        slot.release()


async def close_run(run_id: str) -> None:
    """Stop a run's children on this worker (the run ended, or was stopped), and wait
    until they are gone. Run through ``Client.run``, on the worker's event loop: the
    stopping itself happens in a thread."""
    with _slots_lock:
        slot = _slots.pop(run_id, None)
    if slot is not None:
        await asyncio.to_thread(slot.close)


def can_reach(probe: str) -> str | None:
    """``None`` if this worker sees the file ``probe`` of the store, else why not."""
    try:
        return None if place(probe).exists() else "not found"
    except Exception as exc:  # a missing fsspec package, credentials, network…
        return f"{type(exc).__name__}: {exc}"


def _cancelled(worker: Any, key: Any) -> bool:
    """Whether Dask no longer wants the running task (cancelled by the orchestrator, or
    released because its client is gone). Reads the worker's state machine, which has no
    public accessor; if its shape changes, cancellation falls back to ``close_run``."""
    try:
        ts = worker.state.tasks.get(key)
    except AttributeError:
        return False
    return ts is None or ts.state in ("cancelled", "released", "forgotten")


def _acquire(run_id: str, worker: Any) -> _RunSlot:
    with _slots_lock:
        now = time.monotonic()
        for other, idle in list(_slots.items()):
            if other != run_id and not idle.running and now - idle.last_used > IDLE_CLOSE:
                del _slots[other]
                threading.Thread(target=idle.close, daemon=True).start()
        slot = _slots.get(run_id)
        if slot is None:
            _allow_children()
            slot = _slots[run_id] = _RunSlot(run_id, max(1, worker.state.nthreads), worker)
        slot.running += 1
        return slot


def _allow_children() -> None:
    """Dask starts its workers as daemonic processes, and multiprocessing refuses children
    to those (lest they be orphaned when the worker is killed). Our children die with their
    parent (see :mod:`normandy_core.executors._pool`), so the worker may have them."""
    current = multiprocessing.current_process()
    if current.daemon:
        current.daemon = False


class _RunSlot:
    """One run's children on this worker, and the thread forwarding their records."""

    def __init__(self, run_id: str, size: int, worker: Any) -> None:
        self.run_id = run_id
        self.worker = worker
        self.address = str(worker.address)
        context = mp_context()
        self.queue: Any = PacketQueue(context)  # a killed child cannot block it
        self.pool = WorkerPool(size, init_child, (self.queue,), context)
        self.expired = self.pool.expired
        self.running = 0
        self.last_used = time.monotonic()
        self.ends: dict[tuple[str, int], threading.Event] = {}
        self.idle = threading.Condition()
        self.busy = False
        self.forwarder = threading.Thread(
            target=self._forward, name=f"normandy-logs-{run_id}", daemon=True
        )
        self.forwarder.start()

    def release(self) -> None:
        with _slots_lock:
            self.running -= 1
            self.last_used = time.monotonic()

    # -- one attempt ------------------------------------------------------------------------

    def run(self, call: TaskCall, timeout: float | None, cancelled: Callable[[], bool]) -> Reply:
        end = self.ends.setdefault((call.key, call.attempt), threading.Event())
        try:
            future = self.pool.schedule(run_in_child, (call,), timeout)
            while not concurrent.futures.wait([future], timeout=_POLL).done:
                if cancelled():
                    future.cancel()  # pebble stops the child running it
                    self._settle()
                    return Reply(CANCELLED, self.address)
            try:
                result: TaskResult = future.result()
            except self.expired as exc:
                self._settle()
                return Reply(CRASHED, self.address, exitcode=exc.exitcode, pid=exc.pid)
            except concurrent.futures.TimeoutError:
                self._settle()
                return Reply(TIMED_OUT, self.address)
            except concurrent.futures.CancelledError:  # the pool was stopped by close_run
                self._settle()
                return Reply(CANCELLED, self.address)
            except BaseException as exc:  # pebble could not run it: say what happened
                self._settle()
                return Reply(DONE, self.address, result=_not_run(call, exc))
            end.wait(timeout=10)
            return Reply(DONE, self.address, result=self._amend(result))
        finally:
            self.ends.pop((call.key, call.attempt), None)

    def _amend(self, result: TaskResult) -> TaskResult:
        """A process that cannot be imported here: say on which worker, and the fix (in
        the message and under the traceback, which is what the console shows)."""
        if result.ok or result.error_type != "ProcessLoadError":
            return result
        note = (
            f"on the dask worker {self.address} (host {socket.gethostname()}); install the "
            "package that provides it on every worker, in the same version as where "
            "normandy runs"
        )
        return dataclasses.replace(
            result,
            error_message=f"{result.error_message} — {note}",
            traceback=f"{result.traceback.rstrip()}\n({note})\n" if result.traceback else "",
        )

    def _settle(self, within: float = 2.0) -> None:
        """After a child died: let the forwarder send what it had put on the queue."""
        deadline = time.monotonic() + within
        with self.idle:
            while (self.busy or not self.queue.empty()) and time.monotonic() < deadline:
                self.idle.wait(timeout=0.05)

    # -- the records ------------------------------------------------------------------------

    def _forward(self) -> None:
        while True:
            item = self.queue.get()
            with self.idle:
                self.busy = True
            records: list[dict[str, Any]] = []
            ends: list[End] = []
            stop = False
            while True:
                if item is None:
                    stop = True
                    break
                if isinstance(item, End):
                    ends.append(item)
                elif isinstance(item, logging.LogRecord):
                    records.append(record_to_dict(item))
                elif is_lines(item):  # what a task logged or printed, a record per line
                    records.extend(record_to_dict(r) for r in lines_records(item))
                if len(records) >= _BATCH or self.queue.empty():
                    break
                item = self.queue.get()
            if records:
                try:
                    self.worker.log_event(TOPIC, {"run": self.run_id, "records": records})
                except Exception:  # a record Dask cannot send must not stop the others
                    logging.getLogger(__name__).exception("cannot forward log records")
            for end in ends:
                event = self.ends.get((end.key, end.attempt))
                if event is not None:
                    event.set()
            with self.idle:
                self.busy = False
                self.idle.notify_all()
            if stop:
                return

    def close(self) -> None:
        self.pool.close(cancel=True, timeout=10)  # a child pebble could not stop dies too
        self.queue.put(None)  # the forwarder's sentinel
        self.forwarder.join(timeout=2)


def _not_run(call: TaskCall, exc: BaseException) -> TaskResult:
    """The failure of an attempt that the child pool could not run or return."""
    now = time.time()
    detail = getattr(exc, "traceback", "")  # pebble's: the error's traceback in the child
    return TaskResult(
        call.key,
        False,
        0,
        now,
        now,
        type(exc).__name__,
        f"the child process could not run it: {exc}",
        detail if isinstance(detail, str) else "",
    )
