"""Scheduling a run (SPEC 7): flows one after another, steps in order, the tasks of a step
in parallel on an executor; retries after a delay, tolerated failures, ``keep_going``.

The scheduler only decides what to run next and how each attempt ended. What happens is
told to observers through an :class:`~normandy_core.execution._events.EventBus` (the
history, the log files, the hooks and the displays follow it that way) and the variables
of each attempt are handed to :class:`~normandy_core.execution._variables.RunVariables`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from normandy_core._inbox import Inbox, StartNotice
from normandy_core.errors import ExecutorError
from normandy_core.execution._events import EventBus
from normandy_core.execution._reuse import Decision, Reuse
from normandy_core.execution._variables import RunVariables
from normandy_core.executors import Executor, TaskTimedOut, WorkerCrashed
from normandy_core.outcomes import Attempt, Outcome, TaskError
from normandy_core.plan import Plan, Step, Task
from normandy_core.status import (
    CACHED,
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


@dataclass
class _StepState:
    tags: tuple[str, ...]
    pending: dict[Future[TaskResult], Task] = field(default_factory=dict)
    retry_at: list[tuple[float, Task]] = field(default_factory=list)


class Scheduler:
    """Runs ``plan`` on a started ``executor``; ``outcomes`` (by task key) are updated as
    tasks end; tasks whose outcome is already ``resumed`` are not run."""

    def __init__(
        self,
        plan: Plan,
        executor: Executor,
        outcomes: dict[str, Outcome],
        variables: RunVariables,
        events: EventBus,
        make_call: MakeCall,
        *,
        executor_name: str = "",
        keep_going: bool = False,
        resumed_from: str = "",
        wake_every: float | None = None,
        inbox: Inbox | None = None,
        reuse: Reuse | None = None,
        module_of: Callable[[Task], Sequence[str]] | None = None,
    ) -> None:
        self.plan = plan
        self.executor = executor
        self.outcomes = outcomes
        self.variables = variables
        self.events = events
        self.make_call = make_call
        self.executor_name = executor_name
        self.keep_going = keep_going
        self.resumed_from = resumed_from
        self.wake_every = wake_every
        """Wake at least this often while tasks run (a ``waiting`` event each time)."""
        self.reuse = reuse
        """Fingerprints the tasks and decides which earlier successes stand for them."""
        self._ahead = False  # the processes' code fingerprinted ahead (see _step)
        self.inbox = inbox or Inbox()
        """Where ended attempts and start notices arrive (the log thread's notices too)."""
        self.attempts: dict[str, Attempt] = {}
        """Task key -> its current (or last) attempt."""
        self.module_of = module_of
        """A task's modules, for the executor to import ahead (:meth:`Executor.prepare`):
        its process's, then those it imported when it last ran; ``None``: none is."""
        self._steps = [s for f in plan.flows for s in f.steps]
        self._asked: set[str] = set()
        """The modules the executor was told to import ahead, so far."""
        self._warm = False

    def run(self) -> str:
        """Run every flow; the run's status: ``succeeded`` or ``failed``."""
        status = SUCCEEDED
        for flow in self.plan.flows:
            if status == FAILED and not self.keep_going:
                self.events.flow_skipped(flow)
                continue
            self.events.flow_started(flow)
            flow_status = SUCCEEDED
            for step in flow.steps:
                self.events.step_started(step)
                ok = self._step(flow.tags, step)
                self.events.step_ended(step, ok)
                if not ok:
                    status = flow_status = FAILED
                    break
            self.events.flow_ended(flow, flow_status)
        return status

    def interrupt(self) -> None:
        """The run was stopped (Ctrl-C): every attempt still running is interrupted."""
        now = time.time()
        for outcome in self.outcomes.values():
            if outcome.attempts and outcome.status == NOT_STARTED:
                attempt = self.attempts[outcome.task.key]
                outcome.status, outcome.ended, outcome.pid = INTERRUPTED, now, attempt.pid
                attempt.status, attempt.ended = INTERRUPTED, now
                self.events.attempt_ended(attempt)
                self.events.task_ended(outcome)

    # -- a step -----------------------------------------------------------------------------

    def _modules(self, tasks: Iterable[Task]) -> tuple[str, ...]:
        """The modules ``tasks`` import: every task's process module first (their workers
        need them at once), then what they learned."""
        if self.module_of is None:
            return ()
        each = [self.module_of(task) for task in tasks]
        return tuple(dict.fromkeys([m[0] for m in each if m] + [n for m in each for n in m[1:]]))

    def _prepare(self, tasks: Iterable[Task]) -> None:
        """Tell the executor the modules ``tasks`` import, if any."""
        modules = self._modules(tasks)
        if modules:
            self._asked.update(modules)
            self.executor.prepare(modules)

    def _prepare_after(self, index: int) -> None:
        """While step ``index`` runs: the modules of the next step, and those of the first
        step after it whose process modules were not asked for yet (a later flow's, where
        the steps between use modules imported already: scikit-learn imported while the
        flow before the models runs, not when the models' flow starts)."""
        later = self._steps[index + 1 :]
        if later:
            self._prepare(later[0].tasks)
        module_of = self.module_of
        if module_of is None:
            return
        for step in later[1:]:
            if any(m[:1] and m[0] not in self._asked for m in map(module_of, step.tasks)):
                self._prepare(step.tasks)
                return

    def _step(self, tags: tuple[str, ...], step: Step) -> bool:
        state = _StepState(tags)
        self.variables.step_started()
        running = []
        for task in step.tasks:
            decision = self.reuse.decide(task) if self.reuse is not None else None
            if decision is not None:
                self.outcomes[task.key].reason = decision.reason
                origin = decision.success.origin if decision.success is not None else None
                self.events.task_decided(task, origin, decision.reason)
            if decision is not None and decision.reused:
                self._cached(decision)
            else:
                running.append(task)
        if running and not self._warm:  # decided first: a step all reused starts nothing
            self._warm = True
            self.executor.warm_up()
        self._prepare(running)  # before its tasks: their workers start with their modules
        for task in running:
            self._submit(task, state)
        if state.pending and self.module_of is not None:  # imported while this step runs
            self._prepare_after(self._steps.index(step))
        if state.pending and self.reuse is not None and not self._ahead:
            # while the first workers start (the fork server imports the process modules
            # for them), not later between two steps: parsing every process module and
            # looking up its libraries' versions
            self.reuse.code_ahead(self.plan.tasks())
            self._ahead = True
        while state.pending or state.retry_at:
            now = time.time()
            for due, task in [r for r in state.retry_at if r[0] <= now]:
                state.retry_at.remove((due, task))
                self._submit(task, state)
            self.events.waiting()
            next_retry = min(d for d, _ in state.retry_at) - now if state.retry_at else None
            timeout = min(
                (t for t in (next_retry, self.wake_every) if t is not None), default=None
            )
            if not state.pending:
                time.sleep(max(0.0, timeout or 0.0))
                continue
            news = self.inbox.wait(None if timeout is None else max(0.0, timeout))
            self._announce(news.started, state.pending.values())
            self._settle(news.ended, state)
        self.variables.step_ended(
            t for t in step.tasks if self.outcomes[t.key].status in (SUCCEEDED, CACHED)
        )
        return not any(self.outcomes[t.key].blocking for t in step.tasks)

    def _cached(self, decision: Decision) -> None:
        """An earlier success stands for the task: its variables are bound, it is done."""
        assert self.reuse is not None and decision.success is not None
        task, success = decision.task, decision.success
        outcome = self.outcomes[task.key]
        outcome.variables = self.reuse.bind(decision)
        now = time.time()
        outcome.status, outcome.started, outcome.ended = CACHED, now, now
        outcome.cached_from, outcome.fingerprint = success.origin, success.fingerprint
        outcome.resumed = self.reuse.force
        outcome.writes = tuple(
            (w.name, w.hash or "", w.size or 0, w.type or "") for w in success.writes
        )
        conflict = self.variables.attempt_succeeded(task, outcome.writes)
        if conflict is not None:  # two tasks of the step write one name: as when they run
            error = TaskError(FAILED, "VariableConflict", conflict)
            outcome.status, outcome.error, outcome.cached_from = FAILED, error, None
            outcome.tolerated = task.error_tolerance
        elif self.reuse.force:  # --resume: what succeeded there is not run again
            self.events.task_resumed(task, success.origin)
        else:
            self.events.task_cached(task, success.origin)
        self.events.task_ended(outcome)

    def _submit(self, task: Task, state: _StepState) -> None:
        outcome = self.outcomes[task.key]
        outcome.attempts += 1
        if outcome.started is None:
            outcome.started = time.time()
        self.attempts[task.key] = Attempt(task, outcome.attempts, time.time())
        if self.reuse is not None:
            self.reuse.base(task)  # fingerprinted before it runs (its code as submitted)
        self.variables.attempt_starts(task)
        call = self.make_call(task, state.tags, outcome.attempts)
        self.events.task_submitted(task, outcome.attempts)
        try:
            future = self.executor.submit(call, task.timeout)
        except Exception as exc:  # a broken pool, a lost cluster: the run cannot go on
            raise ExecutorError(
                f"the executor {self.executor_name!r} cannot run {task.key}: "
                f"{describe_error(exc)}"
            ) from exc
        state.pending[future] = task
        future.add_done_callback(self.inbox.ended)

    def _announce(self, notices: list[StartNotice], pending: Iterable[Task]) -> None:
        """Tell the observers of the attempts that workers started (a late notice, for an
        attempt already ended or retried, is dropped)."""
        if not notices:
            return
        waiting = {task.key: task for task in pending}
        for key, attempt, pid, when in notices:
            task = waiting.get(key)
            if task is not None and attempt == self.outcomes[key].attempts:
                self._started(task, pid, when)
        self.inbox.announced()

    def _started(self, task: Task, pid: int | None, when: float) -> None:
        """The current attempt of ``task`` runs on worker ``pid`` since ``when`` (once)."""
        attempt = self.attempts[task.key]
        if attempt.started is not None:
            return
        attempt.pid, attempt.started = pid, when
        outcome = self.outcomes[task.key]
        if outcome.attempts == 1:  # the worker's clock: time queued for a worker not counted
            outcome.started = when
        self.events.task_started(task, outcome.attempts, pid, when)

    # -- how attempts end -------------------------------------------------------------------

    def _settle(self, done: set[Future[TaskResult]], state: _StepState) -> None:
        """Settle the attempts that ended: success, retry later, or failure."""
        for future in done:
            task = state.pending.pop(future)
            error = self._finish(future, task)
            if error is None:
                continue
            outcome = self.outcomes[task.key]
            if outcome.attempts <= task.retries:
                self.events.task_retrying(task, outcome.attempts, error, task.retry_delay)
                state.retry_at.append((time.time() + task.retry_delay, task))
            else:
                outcome.status, outcome.error = error.kind, error
                outcome.tolerated = task.error_tolerance
                self.events.task_ended(outcome)

    def _finish(self, future: Future[TaskResult], task: Task) -> TaskError | None:
        """Record an attempt's end; keep (for the step's end) or discard its writes; return
        the error, if any."""
        outcome = self.outcomes[task.key]
        attempt = self.attempts[task.key]
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
            attempt.reads, attempt.writes = result.reads, result.writes
            if self.reuse is not None:
                attempt.fingerprint = self.reuse.of_attempt(task, result)
        self.events.attempt_ended(attempt)
        if error is None:
            outcome.status, outcome.error = SUCCEEDED, None
            outcome.variables = self.variables.staged(task)
            outcome.fingerprint, outcome.writes = attempt.fingerprint, attempt.writes
            self.events.task_ended(outcome)
        return error

    def _outcome_of(
        self, future: Future[TaskResult], task: Task
    ) -> tuple[TaskError | None, TaskResult | None, int | None]:
        """How an attempt ended: no error for a success, whose writes are then kept for
        the step's end; a failure's writes are discarded. The worker's result, if any, and
        the pid of a crashed worker.

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
                error = TaskError(
                    FAILED, result.error_type, result.error_message, result.traceback
                )
                return error, result, None
            conflict = self.variables.attempt_succeeded(task, result.writes)
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
