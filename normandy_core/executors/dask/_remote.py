"""In each Dask worker: run an attempt in a child process, forward its log records.

Why a child process per attempt, and not the Dask worker's own thread: a thread cannot be
stopped. A task past its ``timeout``, a run stopped by Ctrl-C, or a process that calls
``os._exit`` or segfaults must cost that task only, never the Dask worker (with its other
tasks and its data). So each Dask worker keeps, per run, a pool of child processes
(as many as it has threads) — the ``local`` executor's pool, with its guarantees: the
processes of a run import the run's code once and are replaced when one is killed, and a
new run gets new processes, so edited code is never served stale from an old import.

Log records cannot reach the orchestrator through a multiprocessing queue from another
machine: the children put them on the queue of a :class:`RecordRelay` of their Dask
worker, which sends them in batches as Dask events (``Worker.log_event``) that the
orchestrator's client receives. An attempt's reply is returned only once its records have
been sent: the scheduler relays the events before the task's completion, so a task's
lines come before the orchestrator's line about it. Both pieces are the public engine kit
(:mod:`normandy_core.executors.kit`) that the ``local`` executor is built from too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from normandy_core.executors.dask._protocol import (
    CANCELLED,
    CRASHED,
    DONE,
    RERUN,
    TIMED_OUT,
    TOPIC,
    Reply,
    started_marker,
)
from normandy_core.executors.kit import ChildPool, RecordRelay, TaskTimedOut, WorkerCrashed
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
            slot = _slots[run_id] = _RunSlot(run_id, max(1, worker.state.nthreads), worker)
        slot.running += 1
        return slot


class _RunSlot:
    """One run's children on this worker (the engine kit's pool), and the relay sending
    their records as Dask events."""

    def __init__(self, run_id: str, size: int, worker: Any) -> None:
        self.run_id = run_id
        self.address = str(worker.address)
        self.relay = RecordRelay(
            lambda records: worker.log_event(TOPIC, {"run": run_id, "records": records}),
            batch=_BATCH,
            name=run_id,
        )
        self.pool = ChildPool(size, self.relay.queue, mark_ends=True)
        self.running = 0
        self.last_used = time.monotonic()

    def release(self) -> None:
        with _slots_lock:
            self.running -= 1
            self.last_used = time.monotonic()

    def run(self, call: TaskCall, timeout: float | None, cancelled: Callable[[], bool]) -> Reply:
        sent = self.relay.expect(call)
        try:
            future = self.pool.submit(call, timeout)
            while not concurrent.futures.wait([future], timeout=_POLL).done:
                if cancelled():
                    future.cancel()  # the pool stops the child running it
                    self.relay.settle()
                    return Reply(CANCELLED, self.address)
            if future.cancelled():  # the pool was stopped by close_run
                self.relay.settle()
                return Reply(CANCELLED, self.address)
            error = future.exception()
            if isinstance(error, WorkerCrashed):
                self.relay.settle()
                return Reply(CRASHED, self.address, exitcode=error.exitcode, pid=error.pid)
            if isinstance(error, TaskTimedOut):
                self.relay.settle()
                return Reply(TIMED_OUT, self.address)
            result = future.result()
            sent.wait(timeout=10)
            return Reply(DONE, self.address, result=self._amend(result))
        finally:
            self.relay.forget(call)

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

    def close(self) -> None:
        self.pool.close(cancel=True, timeout=10)  # a child that would not stop dies too
        self.relay.close()
