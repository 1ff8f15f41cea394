"""The ``serial`` executor: every task in the calling process, one after another (for pdb).

As in a worker, what a task writes to descriptors 1 and 2 goes to its log (for the time
of the task only: Normandy's console writes to a duplicate of descriptor 2, see
:func:`normandy_core._capture.console_stream`), and what it started ends with it: this
process is a child subreaper for the run, so that orphaned descendants are found too.
"""

from __future__ import annotations

from concurrent.futures import Future

from normandy_core._capture import Capture
from normandy_core._children import become_subreaper
from normandy_core.executors import Executor
from normandy_core.worker import TaskCall, TaskResult, output_capture, run_task


class SerialExecutor(Executor):
    """Runs each task at once, in this process. Timeouts cannot be enforced here."""

    uses_processes = False
    capture: Capture | None = None
    subreaper = False

    def start(self) -> None:
        self.capture = output_capture(self.setup.log_queue, permanent=False)
        self.subreaper = become_subreaper()

    def submit(self, call: TaskCall, timeout: float | None = None) -> Future[TaskResult]:
        future: Future[TaskResult] = Future()
        future.set_result(run_task(call, self.setup.log_queue, self.capture))
        return future

    def shutdown(self, *, cancel: bool = False) -> None:
        if self.capture is not None:
            self.capture.close()
            self.capture = None
        if self.subreaper:
            become_subreaper(False)
            self.subreaper = False
