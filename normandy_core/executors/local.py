"""The ``local`` executor: a pebble process pool reused for the whole run.

pebble was chosen over ``concurrent.futures.ProcessPoolExecutor`` because it can stop one
task at its deadline and survives a dead worker (the standard pool breaks as a whole).
"""

from __future__ import annotations

import concurrent.futures
from concurrent.futures import Future
from types import ModuleType

from normandy_core.executors import Executor, TaskTimedOut, WorkerCrashed
from normandy_core.executors._forkserver import mp_context
from normandy_core.worker import TaskCall, TaskResult, init_worker, run_task


def _pebble() -> ModuleType:
    """pebble, imported when a pool starts: ``validate`` lists the executors without it."""
    import pebble

    # pebble's manager threads poll every ``sleep_unit`` seconds (0.1 by default): that is
    # how long a pool takes to stop, and how late a crash or a timeout is seen. 10 ms keeps
    # both small for a cost of a hundred cheap checks a second in one thread.
    pebble.CONSTS.sleep_unit = 0.01
    return pebble


class LocalExecutor(Executor):
    def start(self) -> None:
        pebble = _pebble()
        self.pool = pebble.ProcessPool(
            max_workers=self.workers,
            initializer=init_worker,
            initargs=(self.setup.log_queue, self.setup.sys_path),
            context=mp_context(),
        )
        self.expired = pebble.ProcessExpired

    def submit(self, call: TaskCall, timeout: float | None = None) -> Future[TaskResult]:
        inner = self.pool.schedule(run_task, args=(call,), timeout=timeout)
        outer: Future[TaskResult] = Future()

        def done(f: Future[TaskResult]) -> None:
            try:
                outer.set_result(f.result())
            except self.expired as exc:
                outer.set_exception(WorkerCrashed(exc.exitcode, getattr(exc, "pid", None)))
            except concurrent.futures.TimeoutError:
                outer.set_exception(TaskTimedOut(timeout or 0))
            except BaseException as exc:  # cancelled, or pebble's own error
                outer.set_exception(exc)

        inner.add_done_callback(done)
        return outer

    def shutdown(self, *, cancel: bool = False) -> None:
        pool = getattr(self, "pool", None)
        if pool is None:
            return
        if cancel:
            pool.stop()
        else:
            pool.close()
        pool.join()
