"""The ``serial`` executor: every task in the calling process, one after another (for pdb).

As in a worker, what a task started ends with it: this process is a child subreaper for
the run, so that the task's orphaned descendants are found too.
"""

from __future__ import annotations

from concurrent.futures import Future

from normandy_core._children import become_subreaper
from normandy_core.executors import Executor
from normandy_core.worker import TaskCall, TaskResult, run_task


class SerialExecutor(Executor):
    """Runs each task at once, in this process. Timeouts cannot be enforced here."""

    uses_processes = False
    subreaper = False

    def start(self) -> None:
        self.subreaper = become_subreaper()

    def submit(self, call: TaskCall, timeout: float | None = None) -> Future[TaskResult]:
        future: Future[TaskResult] = Future()
        future.set_result(run_task(call, self.setup.log_queue))
        return future

    def shutdown(self, *, cancel: bool = False) -> None:
        if self.subreaper:
            become_subreaper(False)
            self.subreaper = False
