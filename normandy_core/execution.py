"""The orchestrator: runs a plan's flows, steps and tasks on an executor (SPEC 7).

Flows run one after another, steps in order, the tasks of a step in parallel. For each
task: ``normandy_before_process``, submit, then on its end commit or discard its
variables, retry where allowed, ``normandy_on_process_error`` for each failed attempt and
``normandy_after_process`` once. A step with an untolerated failure ends its flow; the
following flows start only with ``keep_going``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from normandy_core import __version__
from normandy_core._inbox import Inbox, StartNotice
from normandy_core._interrupt import RunInterrupted
from normandy_core.errors import ExecutorError, HistoryError, HookError, NormandyError
from normandy_core.events import RunObserver
from normandy_core.executors import Executor, TaskTimedOut, WorkerCrashed, WorkerSetup
from normandy_core.history import History, RunStart, TaskStart
from normandy_core.logs import Console, LogObserver, RunLogs, level_number
from normandy_core.masking import Masker, mask_values, secret_values
from normandy_core.outcomes import Outcome, RunInfo, Summary, TaskError
from normandy_core.plan import Plan, Step, Task
from normandy_core.plugins import available_executors
from normandy_core.project import Checked, Project
from normandy_core.status import (
    CRASHED,
    FAILED,
    INTERRUPTED,
    NOT_STARTED,
    SUCCEEDED,
    TIMED_OUT,
)
from normandy_core.store import FlowStore, Place, store_root
from normandy_core.worker import TaskCall, TaskResult

__all__ = [
    "CRASHED",
    "FAILED",
    "INTERRUPTED",
    "NOT_STARTED",
    "SUCCEEDED",
    "TIMED_OUT",
    "Orchestrator",
    "Outcome",
    "Resume",
    "RunInfo",
    "RunOptions",
    "Summary",
    "TaskError",
    "new_run_id",
    "run_plan",
]


@dataclass(frozen=True)
class Resume:
    """What a resumed run takes from the run it resumes."""

    run_id: str
    succeeded: frozenset[str]
    """Keys of the tasks that succeeded there: not run again."""
    run_dir: Place
    """The resumed run's folder in the store."""


@dataclass
class RunOptions:
    executor: str = "local"
    address: str | None = None
    """The scheduler of an existing cluster (``--address``), over ``confs.<executor>``."""
    workers: int | None = None
    log_level: str = "info"
    keep_going: bool = False
    console: Console | None = None
    resume: Resume | None = None
    observers: list[RunObserver] = field(default_factory=list)
    """Told of the run's events (see :mod:`normandy_core.events`)."""
    console_events: bool = True
    """Echo the run's own progress lines on ``console`` (off where an observer shows the
    progress); what processes log reaches it either way."""


HEARTBEAT = 5.0
"""Seconds between a run's signs of life in the history, while its tasks run."""


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an exception, even one whose ``str()`` fails."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - an exception's own __str__ may raise
        text = "(its message cannot be shown: str() of it raised)"
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{text} ({exc.filename})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def new_run_id() -> str:
    """Sortable by time to the millisecond: ``20261125-061530.123-a3f2``."""
    now = datetime.now()
    return f"{now:%Y%m%d-%H%M%S}.{now.microsecond // 1000:03d}-{secrets.token_hex(2)}"


@dataclass
class _Attempt:
    """The current attempt of a task: when it was submitted; where and since when it runs,
    once its worker reported it (or it ended)."""

    submitted: float
    pid: int | None = None
    started: float | None = None


class Orchestrator:
    def __init__(self, project: Project, plan: Plan, checked: Checked, options: RunOptions):
        self.project = project
        self.plan = plan
        self.checked = checked
        self.options = options
        root = project.root
        self.run = RunInfo(
            id=new_run_id(),
            plan=plan,
            env=checked.env,
            root=root,
            executor=options.executor,
            workers=options.workers or project.config.workers or os.cpu_count() or 1,
        )
        self.store = store_root(root, project.config.store)
        self.run_dir = self.store / "runs" / self.run.id
        self.log_dir = root / "logs" / self.run.id
        self.masks = secret_values(checked.credentials)
        self.outcomes = {task.key: Outcome(task) for task in plan.tasks()}
        self.history = History(root / ".normandy")
        self.inbox = Inbox()
        self.attempts: dict[str, _Attempt] = {}
        """Task key -> its current (or last) attempt."""
        self.observers: list[RunObserver] = []
        self.last_beat = self.run.started
        self.history_warned = False

    # -- hooks and observers -----------------------------------------------------------------

    def _hook(self, name: str, **kwargs: Any) -> None:
        try:
            for _ in self.project.plugins.call_each(name, **kwargs):
                pass
        except HookError as exc:
            self.logs.log(logging.ERROR, str(exc))

    def _notify(self, event: str, *args: Any) -> None:
        """Call ``event`` (a :class:`RunObserver` method) on every observer."""
        for observer in list(self.observers):
            try:
                getattr(observer, event)(*args)
            except Exception:  # a display's bug must not stop the run: report it, drop it
                self.observers.remove(observer)
                self.logs.logger.exception(
                    f"the run observer {type(observer).__qualname__} failed in {event} and "
                    "is no longer called",
                    extra={"flow": None, "key": None, "event": False},
                )

    # -- the run -----------------------------------------------------------------------------

    def execute(self) -> Summary:
        executor_cls = available_executors(self.project.plugins)[self.options.executor]
        level = level_number(self.options.log_level)
        uses_processes = getattr(executor_cls, "uses_processes", True)
        ctx = None
        if uses_processes:
            from normandy_core.executors._forkserver import mp_context

            ctx = mp_context()
        self.logs = RunLogs(
            self.log_dir,
            level,
            self.options.console,
            uses_processes,
            ctx,
            console_events=self.options.console_events,
            on_started=self.inbox.started,
        )
        self.observers = [LogObserver(self.logs), *self.options.observers]
        executor = executor_cls(self.run.workers, self._setup())
        self._start(executor)
        self.run.where = executor.description
        # Until the flows have run to their end, the run has failed: whatever stops it
        # early (an error of the machine or of Normandy) is never recorded as a success.
        status, reason, bug = FAILED, None, None
        try:
            with _Interrupts():
                if self.options.resume is not None:
                    self._take_over(self.options.resume)
                self._notify("run_started", self.run)
                self._hook("normandy_before_run", run=self.run)
                try:
                    # history events are written when the orchestrator waits (History.flush)
                    with self.history.batch():
                        status = self._flows(executor)
                except BaseException:
                    executor.shutdown(cancel=True)
                    raise
                executor.shutdown()
        except KeyboardInterrupt:
            status = INTERRUPTED
            _ignore_signals_until_exit()
            for outcome in self.outcomes.values():
                if outcome.attempts and outcome.status == NOT_STARTED:
                    outcome.status, outcome.ended = INTERRUPTED, time.time()
        except (OSError, NormandyError) as exc:  # the machine (a full disk), the store…
            reason = describe_error(exc)
        except Exception as exc:  # a bug of Normandy's: recorded, then shown with its traceback
            reason, bug = f"internal error: {describe_error(exc)}", exc
        finally:
            with _Interrupts(ignore=True):  # a second Ctrl-C must not cut the record short
                reason = self._end(status, reason)
        summary = self.summary
        if bug is not None:
            raise bug
        return summary

    def _end(self, status: str, reason: str | None) -> str | None:
        """Record the run's end whatever happened; clean up. Returns the reason, with the
        problems met while cleaning up added."""
        problems = [reason] if reason else []
        try:
            self._commit_leftovers()
            (self.run_dir / "staging").remove()
        except OSError as exc:  # staged writes stay where they are, for --resume
            problems.append(f"cleaning up the store: {describe_error(exc)}")
        for outcome in self.outcomes.values():
            if outcome.status == INTERRUPTED:
                self._record_interrupted(outcome)
        reason = "; ".join(problems) or None
        if reason and status == SUCCEEDED:
            status = FAILED
        self.history.end_run(
            self.run.id, status, reason=reason, log_problems=self.logs.problems
        )
        self.history.close()
        self.summary = Summary(
            self.run,
            list(self.outcomes.values()),
            status,
            self.log_dir,
            reason=reason,
            log_problems=self.logs.problems,  # the list itself: it grows until close
        )
        self._hook("normandy_after_run", run=self.run, summary=self.summary)
        self._notify("run_ended", self.summary)
        self.logs.close()
        return reason

    def _setup(self) -> WorkerSetup:
        paths = tuple(str(p) for p in (self.run.root / "src", self.run.root) if p.is_dir())
        options = dict(self.project.config.executor_settings(self.options.executor))
        if self.options.address:
            options["address"] = self.options.address
        return WorkerSetup(
            self.logs.queue, paths, MappingProxyType(options), str(self.run_dir), self.run.id
        )

    def _start(self, executor: Executor) -> None:
        """Record the run, then start the executor: a resume already in progress
        (:class:`~normandy_core.errors.ResumeError`), an engine that cannot start
        (:class:`ExecutorError`) or Ctrl-C while it connects leaves no run behind."""
        try:
            with _Interrupts():
                self._record_start()
                try:
                    executor.start()
                except BaseException:
                    self.history.forget_run(self.run.id)
                    raise
        except BaseException:
            with _Interrupts(ignore=True):
                executor.shutdown(cancel=True)
                self.logs.close()
                self.history.close()
                shutil.rmtree(self.log_dir, ignore_errors=True)
                with contextlib.suppress(OSError):  # logs/ itself, if this made it
                    self.log_dir.parent.rmdir()
            raise

    def _record_interrupted(self, outcome: Outcome) -> None:
        key = outcome.task.key
        attempt = self.attempts[key]
        outcome.pid = attempt.pid
        self.history.attempt_ended(
            self.run.id,
            key,
            outcome.attempts,
            INTERRUPTED,
            attempt.started,
            outcome.ended or time.time(),
            attempt.pid,
        )
        self.history.task_ended(self.run.id, outcome)
        self._notify("task_ended", outcome)

    def _record_start(self) -> None:
        sel = self.plan.selection
        resume = self.options.resume
        mask = Masker(self.masks)  # credentials are never stored: params that hold one
        self.history.start_run(
            RunStart(
                id=self.run.id,
                started=self.run.started,
                tags=sel.tags,
                flows=sel.flows,
                params=mask_values(dict(sel.params), mask),
                env=self.run.env,
                executor=self.run.executor,
                workers=self.run.workers,
                version=__version__,
                fingerprint=self.plan.fingerprint(),
                plan=mask_values(self.plan.to_dict()["flows"], mask),
                resumed_from=resume.run_id if resume else None,
            ),
            (
                TaskStart(
                    t.key, t.flow, t.step, t.name, t.process, mask_values(dict(t.params), mask)
                )
                for t in self.plan.tasks()
            ),
        )

    def _take_over(self, resume: Resume) -> None:
        """Reuse the variables of the resumed run and mark its succeeded tasks done."""
        for flow in self.plan.flows:
            old = FlowStore(resume.run_dir, flow.name)
            new = FlowStore(self.run_dir, flow.name)
            for step in flow.steps:
                for task in step.tasks:
                    if task.key in resume.succeeded and old.staging(task.key).exists():
                        old.commit(task.key)  # its orchestrator died before the step ended
            new.vars_dir.mkdir()
            for name in old.names():
                old.path(name).copy_to(new.path(name))  # a hard link where possible
        for key in resume.succeeded & self.outcomes.keys():
            outcome = self.outcomes[key]
            outcome.status, outcome.resumed = SUCCEEDED, True
            self.history.task_ended(self.run.id, outcome)

    def _commit_leftovers(self) -> None:
        """Commit the writes of tasks that succeeded in a step the run did not finish
        (interrupted), so that a resumed run finds them."""
        for outcome in self.outcomes.values():
            if outcome.status == SUCCEEDED:
                store = FlowStore(self.run_dir, outcome.task.flow)
                if store.staging(outcome.task.key).exists():
                    store.commit(outcome.task.key)

    def _flows(self, executor: Executor) -> str:
        status = SUCCEEDED
        for flow in self.plan.flows:
            if status == FAILED and not self.options.keep_going:
                self._notify("flow_skipped", flow)
                continue
            store = FlowStore(self.run_dir, flow.name)
            self._notify("flow_started", flow)
            flow_status = SUCCEEDED
            for step in flow.steps:
                self._notify("step_started", step)
                ok = self._step(executor, flow.tags, step, store)
                self._notify("step_ended", step, ok)
                if not ok:
                    status = flow_status = FAILED
                    break
            self._notify("flow_ended", flow, flow_status)
        return status

    def _call(self, task: Task, tags: tuple[str, ...], store: FlowStore, attempt: int) -> TaskCall:
        spec = self.project.registry.get(task.process)
        return TaskCall(
            run_id=self.run.id,
            flow=task.flow,
            step=task.step,
            task=task.name,
            key=task.key,
            process=task.process,
            target=spec.target,
            params=dict(task.params),
            tags=tags,
            env=self.checked.env,
            confs=dict(self.checked.settings),
            credentials=dict(self.checked.credentials),
            root=str(self.run.root),
            vars_dir=str(store.vars_dir),
            staging_dir=str(store.staging(task.key)),
            attempt=attempt,
            log_level=self.logs.level,
            masks=self.masks,
        )

    def _step(
        self, executor: Executor, tags: tuple[str, ...], step: Step, store: FlowStore
    ) -> bool:
        pending: dict[Future[TaskResult], Task] = {}
        retry_at: list[tuple[float, Task]] = []
        written: dict[str, str] = {}  # variable -> task key, within this step

        def submit(task: Task) -> None:
            outcome = self.outcomes[task.key]
            outcome.attempts += 1
            if outcome.started is None:
                outcome.started = time.time()
            self._hook("normandy_before_process", run=self.run, task=task)
            attempt = self.attempts[task.key] = _Attempt(time.time())
            self.history.attempt_started(self.run.id, task.key, outcome.attempts, attempt.submitted)
            store.discard(task.key)
            call = self._call(task, tags, store, outcome.attempts)
            self._notify("task_submitted", task, outcome.attempts)
            try:
                future = executor.submit(call, task.timeout)
            except Exception as exc:  # a broken pool, a lost cluster: the run cannot go on
                raise ExecutorError(
                    f"the executor {self.options.executor!r} cannot run {task.key}: "
                    f"{describe_error(exc)}"
                ) from exc
            pending[future] = task
            future.add_done_callback(self.inbox.ended)

        resumed_from = self.options.resume.run_id if self.options.resume else ""
        for task in step.tasks:
            if not self.outcomes[task.key].resumed:
                submit(task)
            else:
                self._notify("task_resumed", task, resumed_from)
        while pending or retry_at:
            now = time.time()
            for due, task in [r for r in retry_at if r[0] <= now]:
                retry_at.remove((due, task))
                submit(task)
            self._flush(now)  # what happened so far is on disk before waiting
            if not pending:
                time.sleep(max(0.0, min(d for d, _ in retry_at) - time.time()))
                continue
            due = min(d for d, _ in retry_at) - now if retry_at else HEARTBEAT
            news = self.inbox.wait(max(0.0, min(due, HEARTBEAT)))
            self._announce(news.started, pending.values())
            self._ended(news.ended, pending, store, written, retry_at)
        # the writes of every task that succeeded, tolerated failures of others or not
        for task in step.tasks:
            if self.outcomes[task.key].status == SUCCEEDED:
                store.commit(task.key)
        return not any(self.outcomes[t.key].blocking for t in step.tasks)

    def _flush(self, now: float) -> None:
        """Write the history's pending events, with a heartbeat at most every
        :data:`HEARTBEAT` seconds (a killed run then reads as lasting until its last one).
        A history locked by another program does not stop the run: the events are kept
        and written at a later flush."""
        if now - self.last_beat >= HEARTBEAT:
            self.history.heartbeat(self.run.id, now)
            self.last_beat = now
        try:
            self.history.flush()
        except HistoryError as exc:
            if not self.history_warned:
                self.history_warned = True
                self.logs.log(logging.WARNING, f"{exc}; the run goes on and writes it later")

    def _ended(
        self,
        done: set[Future[Any]],
        pending: dict[Future[TaskResult], Task],
        store: FlowStore,
        written: dict[str, str],
        retry_at: list[tuple[float, Task]],
    ) -> None:
        """Settle the attempts that ended: success, retry later, or failure."""
        for future in done:
            task = pending.pop(future)
            error = self._finish(future, task, store, written)
            outcome = self.outcomes[task.key]
            if error is None:
                continue
            self._hook("normandy_on_process_error", run=self.run, task=task, error=error)
            if outcome.attempts <= task.retries:
                self._notify("task_retrying", task, outcome.attempts, error, task.retry_delay)
                retry_at.append((time.time() + task.retry_delay, task))
            else:
                self._failed(task, error)

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
        self._notify("task_started", task, outcome.attempts, pid, when)

    def _finish(
        self, future: Future[TaskResult], task: Task, store: FlowStore, written: dict[str, str]
    ) -> TaskError | None:
        """Record an attempt's end; keep (for the step's end) or discard its writes; return
        the error, if any."""
        error, result, crashed_pid = self._attempt_error(future, task, store, written)
        outcome = self.outcomes[task.key]
        attempt = self.attempts[task.key]
        if result is not None:
            self._started(task, result.pid, result.started)
        else:  # crashed or timed out: seen started, else from submission, on a known worker
            self._started(task, crashed_pid, attempt.submitted)
        outcome.pid = (result.pid if result else crashed_pid) or attempt.pid
        self.history.attempt_ended(
            self.run.id,
            task.key,
            outcome.attempts,
            error.kind if error else SUCCEEDED,
            attempt.started,
            outcome.ended or time.time(),
            outcome.pid,
            error,
        )
        if error is None:
            outcome.status, outcome.error = SUCCEEDED, None
            outcome.variables = tuple(store.staged_names(task.key))
            self.history.task_ended(self.run.id, outcome)
            self._notify("task_ended", outcome)
            self._hook("normandy_after_process", run=self.run, task=task, outcome=outcome)
        return error

    def _attempt_error(
        self, future: Future[TaskResult], task: Task, store: FlowStore, written: dict[str, str]
    ) -> tuple[TaskError | None, TaskResult | None, int | None]:
        """How an attempt ended: no error for a success, whose writes are then staged for
        the step's end; a failure's writes are discarded. The worker's result, if any, and
        the pid of a crashed worker."""
        outcome = self.outcomes[task.key]
        outcome.ended = time.time()
        try:
            result = future.result()
        except WorkerCrashed as exc:
            store.discard(task.key)
            return TaskError(CRASHED, "WorkerCrashed", str(exc)), None, exc.pid
        except TaskTimedOut as exc:
            store.discard(task.key)
            return TaskError(TIMED_OUT, "TimedOut", str(exc)), None, None
        except RunInterrupted:  # Ctrl-C while the orchestrator takes the result
            raise
        except BaseException as exc:  # whatever else a future holds is this task's failure
            store.discard(task.key)
            message = f"the executor could not run it: {type(exc).__name__}: {exc}"
            return TaskError(FAILED, type(exc).__name__, message), None, None
        outcome.ended = result.ended
        if not result.ok:
            store.discard(task.key)
            error = TaskError(FAILED, result.error_type, result.error_message, result.traceback)
            return error, result, None
        clashes = [n for n in store.staged_names(task.key) if n in written]
        if clashes:
            store.discard(task.key)
            others = ", ".join(f"{n!r} (also written by {written[n]})" for n in clashes)
            return (
                TaskError(
                    FAILED,
                    "VariableConflict",
                    f"{task.key} and another task of the "
                    f"same step wrote the variable {others}; give them different names",
                ),
                result,
                None,
            )
        for name in store.staged_names(task.key):  # committed when the step ends (SPEC 5)
            written[name] = task.key
        return None, result, None

    def _failed(self, task: Task, error: TaskError) -> None:
        outcome = self.outcomes[task.key]
        outcome.status, outcome.error, outcome.tolerated = error.kind, error, task.error_tolerance
        self.history.task_ended(self.run.id, outcome)
        self._notify("task_ended", outcome)
        self._hook("normandy_after_process", run=self.run, task=task, outcome=outcome)


def _ignore_signals_until_exit() -> None:
    """After a Ctrl-C, further SIGINT/SIGTERM are ignored until the process exits, so the
    summary and the record are written whole (Python's shutdown keeps SIG_IGN)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


class _Interrupts:
    """SIGINT and SIGTERM as ``KeyboardInterrupt``, once: a second signal while the run
    is being stopped is ignored. With ``ignore``, both are ignored inside the block."""

    def __init__(self, ignore: bool = False) -> None:
        self.ignore = ignore
        self.received = False
        self.saved: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.ignore or self.received:
            return
        self.received = True
        raise RunInterrupted

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def run_plan(project: Project, plan: Plan, checked: Checked, options: RunOptions) -> Summary:
    """Run ``plan``; raise :class:`NormandyError` for an unknown executor."""
    known = available_executors(project.plugins)
    if options.executor not in known:
        raise NormandyError(
            f"unknown executor {options.executor!r}; the executors are: {', '.join(sorted(known))}"
        )
    if options.console is None:  # not sys.stderr, whose descriptor a serial task captures
        from normandy_core._capture import console_stream

        options.console = console_stream()
    return Orchestrator(project, plan, checked, options).execute()
