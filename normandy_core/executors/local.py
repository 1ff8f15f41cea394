"""The ``local`` executor: a pool of worker processes reused for the whole run.

The pool is the engine kit's :class:`~normandy_core.executors.kit.ChildPool` (pebble's,
chosen over ``concurrent.futures.ProcessPoolExecutor`` because it can stop one task at its
deadline and survives a dead worker, where the standard pool breaks as a whole).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING

from normandy_core.executors import Executor

if TYPE_CHECKING:  # the pool (pebble, the worker) only for a run: not to list executors
    from normandy_core.executors.kit import ChildPool
    from normandy_core.worker import TaskCall, TaskResult


class LocalExecutor(Executor):
    pool: ChildPool | None = None
    preloads = True

    def start(self) -> None:
        from normandy_core.executors.kit import ChildPool

        self.pool = ChildPool(
            self.workers,
            self.setup.log_queue,
            self.setup.sys_path,
            preload=self.setup.modules,
            first=self.setup.first_modules,
        )

    def submit(self, call: TaskCall, timeout: float | None = None) -> Future[TaskResult]:
        assert self.pool is not None, "start() first"
        return self.pool.submit(call, timeout)

    def shutdown(self, *, cancel: bool = False) -> None:
        if self.pool is not None:
            self.pool.close(cancel=cancel)
