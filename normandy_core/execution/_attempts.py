"""A run's attempts (SPEC 7): each handed to the executor as a
:class:`~normandy_core.worker.TaskCall`, seen started by its worker, and how it ended —
a success whose writes are kept until they are committed, or a failure (failed, crashed,
timed out) whose writes are discarded. What follows an attempt's end (a retry, the task's
end, what may start then) is the scheduler's."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import replace

from normandy_core._inbox import Inbox, StartNotice
from normandy_core.errors import ExecutorError
from normandy_core.execution._events import EventBus
from normandy_core.execution._reuse import Reuse
from normandy_core.execution._variables import RunVariables
from normandy_core.executors import Executor, TaskTimedOut, WorkerCrashed
from normandy_core.outcomes import Attempt, Outcome, TaskError
from normandy_core.plan import Task
from normandy_core.status import (
    CRASHED,
    FAILED,
    INTERRUPTED,
    NOT_STARTED,
    SUCCEEDED,
    TIMED_OUT,
)
from normandy_core.worker import TaskCall, TaskResult

MakeCall = Callable[[Task, tuple[str, ...], int], TaskCall]
"""``(task, the flow's tags, attempt number) -> TaskCall``."""


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an exception, even one whose ``str()`` fails."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - an exception's own __str__ may raise
        text = "(its message cannot be shown: str() of it raised)"
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{text} ({exc.filename})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Attempts:
    """The attempts handed to ``executor`` (``pending``, until they end) and the current
    (or last) one of each task (``current``)."""

    def __init__(
        self,
        executor: Executor,
        executor_name: str,
        outcomes: dict[str, Outcome],
        variables: RunVariables,
        events: EventBus,
        make_call: MakeCall,
        inbox: Inbox,
        reuse: Reuse | None,
        tags: dict[str, tuple[str, ...]],
    ) -> None:
        self.executor = executor
        self.executor_name = executor_name
        self.outcomes = outcomes
        self.variables = variables
        self.events = events
        self.make_call = make_call
        self.inbox = inbox
        self.reuse = reuse
        self.tags = tags
        """Each flow's tags, for its tasks' calls."""
        self.current: dict[str, Attempt] = {}
        """Task key -> its current (or last) attempt."""
        self.pending: dict[Future[TaskResult], Task] = {}
        self._running: dict[str, Task] = {}
        """Task key -> its task, while an attempt of it is pending (for start notices)."""

    def submit(self, task: Task, waited: float = 0.0) -> None:
        """Hand the next attempt of ``task`` to the executor (``waited``: seconds it waited
        for a pool's units); :class:`ExecutorError` where the executor cannot take it."""
        outcome = self.outcomes[task.key]
        outcome.attempts += 1
        outcome.waited += waited
        if outcome.started is None:
            outcome.started = time.time()
        self.current[task.key] = Attempt(task, outcome.attempts, time.time())
        if self.reuse is not None:
            self.reuse.base(task)  # fingerprinted before it runs (its code as submitted)
        if outcome.attempts > 1:  # a first attempt has nothing staged to drop
            self.variables.attempt_starts(task)
        call = self.make_call(task, self.tags[task.flow], outcome.attempts)
        self.events.task_submitted(task, outcome.attempts)
        try:
            future = self.executor.submit(call, task.timeout)
        except Exception as exc:  # a broken pool, a lost cluster: the run cannot go on
            raise ExecutorError(
                f"the executor {self.executor_name!r} cannot run {task.key}: {describe_error(exc)}"
            ) from exc
        self.pending[future] = task
        self._running[task.key] = task
        future.add_done_callback(self.inbox.ended)

    def announce(self, notices: list[StartNotice]) -> None:
        """Tell the observers of the attempts that workers started (a late notice, for an
        attempt already ended or retried, is dropped)."""
        if not notices:
            return
        for key, attempt, pid, when in notices:
            task = self._running.get(key)
            if task is not None and attempt == self.outcomes[key].attempts:
                self._started(task, pid, when)
        self.inbox.announced()

    def _started(self, task: Task, pid: int | None, when: float) -> None:
        """The current attempt of ``task`` runs on worker ``pid`` since ``when`` (once)."""
        attempt = self.current[task.key]
        if attempt.started is not None:
            return
        attempt.pid, attempt.started = pid, when
        outcome = self.outcomes[task.key]
        if outcome.attempts == 1:  # the worker's clock: time queued for a worker not counted
            outcome.started = when
        self.events.task_started(task, outcome.attempts, pid, when)

    def interrupted(self, now: float) -> Iterable[Outcome]:
        """The run was stopped: the attempts still running are interrupted; their
        tasks' outcomes (to be told ended)."""
        for outcome in list(self.outcomes.values()):
            if outcome.attempts and outcome.status == NOT_STARTED:
                attempt = self.current[outcome.task.key]
                outcome.status, outcome.ended, outcome.pid = INTERRUPTED, now, attempt.pid
                attempt.status, attempt.ended = INTERRUPTED, now
                self.events.attempt_ended(attempt)
                yield outcome

    # -- how attempts end -------------------------------------------------------------------

    def finish(self, future: Future[TaskResult]) -> tuple[Task, TaskError | None]:
        """Record the end of the attempt ``future`` stands for; keep (until they are
        committed) or discard its writes; its task, and its error if it failed."""
        task = self.pending.pop(future)
        self._running.pop(task.key, None)
        outcome = self.outcomes[task.key]
        attempt = self.current[task.key]
        error, result, crashed_pid = self._outcome_of(future, task)
        if result is not None:
            self._started(task, result.pid, result.started)
            if result.import_duration:  # its duration is its work: the import is apart
                attempt.started, attempt.import_duration = result.started, result.import_duration
                outcome.import_duration += result.import_duration
                if outcome.attempts == 1:
                    outcome.started = result.started
        else:  # crashed or timed out: seen started, else from submission, on a known worker
            self._started(task, crashed_pid, attempt.submitted)
        outcome.pid = (result.pid if result else crashed_pid) or attempt.pid
        attempt.pid, attempt.ended = outcome.pid, outcome.ended or time.time()
        attempt.status, attempt.error = (error.kind if error else SUCCEEDED), error
        if result is not None:
            if task.element is not None:  # its element: what it read of the variable, which
                element = task.element  # its fingerprint holds (a changed element reruns)
                read = (element.read, element.hash, element.size)
                result = replace(result, reads=(*result.reads, read))
            attempt.reads, attempt.writes = result.reads, result.writes
            attempt.datasets = result.datasets
            if self.reuse is not None:
                attempt.fingerprint = self.reuse.of_attempt(task, result)
        self.events.attempt_ended(attempt)
        if error is None:
            outcome.status, outcome.error = SUCCEEDED, None
            outcome.variables = self.variables.staged(task)
            outcome.fingerprint, outcome.writes = attempt.fingerprint, attempt.writes
        return task, error

    def _outcome_of(
        self, future: Future[TaskResult], task: Task
    ) -> tuple[TaskError | None, TaskResult | None, int | None]:
        """How an attempt ended: no error for a success, whose writes are then kept until
        they are committed; a failure's writes are discarded. The worker's result, if
        any, and the pid of a crashed worker.

        The future's exception is taken as a value, never raised here: a
        ``KeyboardInterrupt`` or ``SystemExit`` that an executor hands back is a failure of
        that task, while a real Ctrl-C stays the orchestrator's."""
        outcome = self.outcomes[task.key]
        outcome.ended = time.time()
        if future.cancelled():
            self.variables.attempt_failed(task)
            return TaskError(FAILED, "Cancelled", "the executor cancelled it"), None, None
        raised = future.exception()
        if raised is None:
            result = future.result()
            outcome.ended = result.ended
            if not result.ok:
                self.variables.attempt_failed(task)
                error = TaskError(FAILED, result.error_type, result.error_message, result.traceback)
                return error, result, None
            conflict = self.variables.attempt_succeeded(
                task, result.writes, complete=result.writes_known
            )
            if conflict is not None:
                return TaskError(FAILED, "VariableConflict", conflict), result, None
            return None, result, None
        self.variables.attempt_failed(task)
        if isinstance(raised, WorkerCrashed):
            return TaskError(CRASHED, "WorkerCrashed", str(raised)), None, raised.pid
        if isinstance(raised, TaskTimedOut):
            return TaskError(TIMED_OUT, "TimedOut", str(raised)), None, None
        message = f"the executor could not run it: {describe_error(raised)}"
        return TaskError(FAILED, type(raised).__name__, message), None, None
