"""The ``serial`` executor: every task in the calling process, one after another (for pdb)."""

from __future__ import annotations

from concurrent.futures import Future

from normandy_core.executors import Executor
from normandy_core.worker import TaskCall, TaskResult, run_task


class SerialExecutor(Executor):
    """Runs each task at once, in this process. Timeouts cannot be enforced here."""

    uses_processes = False

    def submit(self, call: TaskCall, timeout: float | None = None) -> Future[TaskResult]:
        future: Future[TaskResult] = Future()
        future.set_result(run_task(call, self.setup.log_queue))
        return future

    def shutdown(self, *, cancel: bool = False) -> None:
        pass
