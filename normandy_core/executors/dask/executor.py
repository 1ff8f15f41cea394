"""The ``dask`` executor, in the orchestrator.

Each attempt is one Dask task running :func:`._remote.run_call` with the
:class:`~normandy_core.worker.TaskCall` (plain data: the process travels by name and the
worker imports it). What comes back is turned into what every executor gives:

- a reply ``done``: the :class:`~normandy_core.worker.TaskResult`;
- ``crashed`` (the child died), ``rerun`` (Dask started the attempt again after losing the
  worker that ran it), or ``KilledWorker`` (the Dask worker died while running it):
  :class:`~normandy_core.executors.WorkerCrashed`. A task that was only *queued* on a
  worker that died had not started (no started-marker in its staging folder): it is
  submitted again, which runs it once;
- ``timed out``: :class:`~normandy_core.executors.TaskTimedOut`.

Log records arrive as Dask events (topic ``normandy-logs``) and are put on the run's log
queue, so they reach the console and the log files like the ``local`` executor's.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from normandy_core.errors import ExecutorError
from normandy_core.executors import Executor, TaskTimedOut, WorkerCrashed, WorkerSetup
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

if TYPE_CHECKING:  # not imported to list the executors (normandy list, validate)
    from normandy_core.worker import TaskCall, TaskResult

_REQUIRES = ("distributed", "fsspec")
_RESUBMITS = 3


class DaskExecutor(Executor):
    """Runs tasks on a Dask cluster: ``options["address"]`` (``--address``,
    ``confs.dask.address``), else a ``LocalCluster`` of ``workers`` processes for the run."""

    @classmethod
    def unavailable(cls) -> str | None:
        missing = [name for name in _REQUIRES if importlib.util.find_spec(name) is None]
        if not missing:
            return None
        return (
            f"it needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            "not installed: pip install 'normandy[dask]'"
        )

    def __init__(self, workers: int, setup: WorkerSetup) -> None:
        super().__init__(workers, setup)
        self.client: Any = None
        self.cluster: Any = None
        self.description = ""
        self._live: dict[str, Any] = {}  # dask futures not yet ended, by key
        self._lock = threading.Lock()
        self._closing = False

    # -- starting --------------------------------------------------------------------------

    def start(self) -> None:
        from normandy_core.executors.dask._cluster import connect

        address = self.setup.options.get("address")
        self.client, self.cluster, self.description = connect(address, self.workers)
        self.client.subscribe_topic(TOPIC, self._on_records)
        if self.cluster is None:
            self._check_store(str(address))

    def _check_store(self, address: str) -> None:
        """Every worker of an existing cluster must reach the run's store."""
        from normandy_core.executors.dask._remote import can_reach
        from normandy_core.store import place

        probe = place(self.setup.store) / ".reachable"
        probe.write([self.setup.run_id.encode()])
        try:
            answers = self.client.run(can_reach, str(probe), on_error="return")
        finally:
            probe.remove()
        failing = {w: a for w, a in answers.items() if a is not None}
        if failing:
            listed = "; ".join(f"{w}: {a}" for w, a in sorted(failing.items()))
            raise ExecutorError(
                f"the store {self.setup.store} cannot be reached from dask workers of "
                f"{address} ({listed}); point confs.store at storage every worker reaches: "
                "a folder shared at the same path on every machine, or a URL such as "
                "s3://bucket/normandy (see 'Running on a cluster' in the README)"
            )

    # -- tasks -----------------------------------------------------------------------------

    def submit(self, call: TaskCall, timeout: float | None = None) -> Future[TaskResult]:
        outer: Future[TaskResult] = Future()
        self._send(call, timeout, outer, 0)
        return outer

    def _send(
        self, call: TaskCall, timeout: float | None, outer: Future[TaskResult], n: int
    ) -> None:
        from normandy_core.executors.dask._remote import run_call

        key = f"normandy-{call.key}-{call.run_id}-{call.attempt}" + (f"-again{n}" if n else "")
        dfut = self.client.submit(run_call, call, timeout, key=key, pure=False, retries=0)
        with self._lock:
            self._live[key] = dfut
        dfut.add_done_callback(lambda f: self._ended(f, call, timeout, outer, n))

    def _ended(
        self, dfut: Any, call: TaskCall, timeout: float | None, outer: Future[TaskResult], n: int
    ) -> None:
        """In Dask's callback thread: resolve ``outer`` from how the Dask task ended."""
        with self._lock:
            self._live.pop(dfut.key, None)
        try:
            if outer.done():
                return
            if dfut.status == "finished":
                _resolve(outer, dfut.result(), timeout, self._closing)
            elif dfut.status == "cancelled" or self._closing:
                _resolve(outer, Reply(CANCELLED, ""), timeout, self._closing)
            else:
                self._erred(dfut.exception(), call, timeout, outer, n)
        except BaseException as exc:  # the connection to the cluster is gone…
            if not outer.done():
                outer.set_result(_failed(call, exc, "dask could not return its result"))
        finally:
            dfut.release()

    def _erred(
        self,
        exc: BaseException,
        call: TaskCall,
        timeout: float | None,
        outer: Future[TaskResult],
        n: int,
    ) -> None:
        from distributed.scheduler import KilledWorker

        if not isinstance(exc, KilledWorker):
            outer.set_result(_failed(call, exc, "dask could not run it"))
            return
        worker = getattr(getattr(exc, "last_worker", None), "address", "?")
        if not started_marker(call).exists() and n < _RESUBMITS and not self._closing:
            self._send(call, timeout, outer, n + 1)  # it was only queued there
            return
        outer.set_exception(
            WorkerCrashed(
                None,
                None,
                f"the dask worker {worker} running it died (killed, crashed, or out of "
                "memory); dask does not run it again",
            )
        )

    def _on_records(self, event: tuple[float, Any]) -> None:
        """On the client's event loop: the records of this run's tasks, to the log queue."""
        _, message = event
        if not isinstance(message, dict) or message.get("run") != self.setup.run_id:
            return
        from normandy_core.executors.kit import dict_to_record

        for data in message.get("records", ()):
            self.setup.log_queue.put(dict_to_record(data))

    # -- stopping --------------------------------------------------------------------------

    def shutdown(self, *, cancel: bool = False) -> None:
        self._closing = True
        if self.client is None:
            return
        from normandy_core.executors.dask._remote import close_run

        try:
            with self._lock:
                live = list(self._live.values())
            if cancel and live:
                self.client.cancel(live, force=True)
            # stop the run's child processes on every worker, at once rather than at their
            # next look at the cancellation, and wait for them: the cluster is left idle
            self.client.run(close_run, self.setup.run_id, on_error="ignore")
            self.client.unsubscribe_topic(TOPIC)
        except Exception:  # the cluster is already gone: nothing left to stop there
            pass
        finally:
            self.client.close(timeout=10)
            if self.cluster is not None:
                self.cluster.close(timeout=20)
            self.client = self.cluster = None


def _resolve(outer: Future[TaskResult], reply: Reply, timeout: float | None, closing: bool) -> None:
    if reply.kind == DONE and reply.result is not None:
        outer.set_result(reply.result)
    elif reply.kind == CRASHED:
        outer.set_exception(WorkerCrashed(reply.exitcode, reply.pid))
    elif reply.kind == TIMED_OUT:
        outer.set_exception(TaskTimedOut(timeout or 0))
    elif reply.kind == RERUN:
        outer.set_exception(
            WorkerCrashed(
                None,
                None,
                "the dask worker that started it was lost, and dask started it again on "
                f"{reply.worker}; Normandy runs an attempt at most once",
            )
        )
    elif reply.kind == CANCELLED and closing:  # the run is being stopped: nobody waits
        outer.cancel()
    elif reply.kind == CANCELLED:
        outer.set_exception(
            WorkerCrashed(None, None, "dask cancelled it (the scheduler lost it, or restarted)")
        )
    else:  # pragma: no cover - a reply this version does not know
        outer.set_exception(WorkerCrashed(None, None, f"unexpected reply {reply.kind!r}"))


def _failed(call: TaskCall, exc: BaseException, what: str) -> TaskResult:
    from normandy_core.worker import TaskResult

    now = time.time()
    return TaskResult(
        key=call.key,
        ok=False,
        pid=0,
        started=now,
        ended=now,
        error_type=type(exc).__name__,
        error_message=f"{what}: {exc}",
    )
