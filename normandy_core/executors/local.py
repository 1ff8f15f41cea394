"""The ``local`` executor: a pool of worker processes reused for the whole run.

The pool is pebble's (see :mod:`._pool`), chosen over
``concurrent.futures.ProcessPoolExecutor`` because it can stop one task at its deadline and
survives a dead worker (the standard pool breaks as a whole).
"""

from __future__ import annotations

import concurrent.futures
from concurrent.futures import Future

from normandy_core.executors import Executor, TaskTimedOut, WorkerCrashed
from normandy_core.executors._pool import WorkerPool
from normandy_core.worker import TaskCall, TaskResult, init_worker, run_task


class LocalExecutor(Executor):
    def start(self) -> None:
        self.pool = WorkerPool(
            self.workers, init_worker, (self.setup.log_queue, self.setup.sys_path)
        )

    def submit(self, call: TaskCall, timeout: float | None = None) -> Future[TaskResult]:
        inner = self.pool.schedule(run_task, (call,), timeout)
        outer: Future[TaskResult] = Future()
        expired = self.pool.expired

        def done(f: Future[TaskResult]) -> None:
            try:
                outer.set_result(f.result())
            except expired as exc:
                outer.set_exception(WorkerCrashed(exc.exitcode, getattr(exc, "pid", None)))
            except concurrent.futures.TimeoutError:
                outer.set_exception(TaskTimedOut(timeout or 0))
            except BaseException as exc:  # cancelled, or pebble's own error
                outer.set_exception(exc)

        inner.add_done_callback(done)
        return outer

    def shutdown(self, *, cancel: bool = False) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.close(cancel=cancel)
