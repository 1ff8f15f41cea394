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
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

from normandy_core import __version__
from normandy_core.errors import HookError, NormandyError
from normandy_core.executors import Executor, TaskTimedOut, WorkerCrashed, WorkerSetup
from normandy_core.history import History
from normandy_core.logs import RunLogs, level_number
from normandy_core.plan import Plan, Step, Task
from normandy_core.plugins import available_executors
from normandy_core.project import Checked, Project
from normandy_core.store import FlowStore, Place, store_root
from normandy_core.worker import TaskCall, TaskResult, secret_values

SUCCEEDED, FAILED, CRASHED, TIMED_OUT, INTERRUPTED, NOT_STARTED = (
    "succeeded",
    "failed",
    "crashed",
    "timed out",
    "interrupted",
    "not started",
)


@dataclass(frozen=True)
class TaskError:
    """Why an attempt failed: ``kind`` is ``failed``, ``crashed`` or ``timed out``."""

    kind: str
    type: str
    message: str
    traceback: str = ""


@dataclass
class Outcome:
    """How a task ended, after its last attempt."""

    task: Task
    status: str = NOT_STARTED
    tolerated: bool = False
    attempts: int = 0
    started: float | None = None
    ended: float | None = None
    pid: int | None = None
    error: TaskError | None = None
    resumed: bool = False
    """Succeeded in the run this one resumes: not run again."""
    variables: tuple[str, ...] = ()
    """The variables this task wrote (committed)."""

    @property
    def duration(self) -> float:
        return (self.ended - self.started) if self.started and self.ended else 0.0

    @property
    def blocking(self) -> bool:
        """A failure that stops its flow."""
        return self.status not in (SUCCEEDED, NOT_STARTED) and not self.tolerated


@dataclass
class RunInfo:
    """What hooks receive as ``run``."""

    id: str
    plan: Plan
    env: str
    root: Path
    executor: str
    workers: int
    started: float = field(default_factory=time.time)


@dataclass
class Summary:
    """Every task's outcome and the run's status (``succeeded``, ``failed``, ``interrupted``)."""

    run: RunInfo
    outcomes: list[Outcome]
    status: str
    log_dir: Path

    @property
    def exit_code(self) -> int:
        return {"succeeded": 0, "failed": 1, "interrupted": 130}[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run.id,
            "status": self.status,
            "env": self.run.env,
            "logs": str(self.log_dir),
            "tasks": [
                {
                    "flow": o.task.flow,
                    "step": o.task.step,
                    "task": o.task.name,
                    "status": o.status,
                    "resumed": o.resumed,
                    "tolerated": o.tolerated,
                    "attempts": o.attempts,
                    "duration": round(o.duration, 3),
                    "pid": o.pid,
                    "error": None
                    if o.error is None
                    else {"kind": o.error.kind, "type": o.error.type, "message": o.error.message},
                }
                for o in self.outcomes
            ],
        }


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
    console: IO[str] | None = None
    resume: Resume | None = None


def new_run_id() -> str:
    """Sortable by time to the millisecond: ``20261125-061530.123-a3f2``."""
    now = datetime.now()
    return f"{now:%Y%m%d-%H%M%S}.{now.microsecond // 1000:03d}-{secrets.token_hex(2)}"


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

    # -- hooks -------------------------------------------------------------------------------

    def _hook(self, name: str, **kwargs: Any) -> None:
        try:
            for _ in self.project.plugins.call_each(name, **kwargs):
                pass
        except HookError as exc:
            self.logs.log(logging.ERROR, str(exc))

    # -- the run -----------------------------------------------------------------------------

    def execute(self) -> Summary:
        executor_cls = available_executors(self.project.plugins)[self.options.executor]
        level = level_number(self.options.log_level)
        uses_processes = getattr(executor_cls, "uses_processes", True)
        ctx = None
        if uses_processes:
            from normandy_core.executors._forkserver import mp_context

            ctx = mp_context()
        self.logs = RunLogs(self.log_dir, level, self.options.console, uses_processes, ctx)
        executor = executor_cls(self.run.workers, self._setup())
        self._start(executor)
        status = "succeeded"
        self._record_start()
        try:
            with _Interrupts():
                where = executor.description or f"{self.run.workers} workers"
                self.logs.log(
                    logging.INFO,
                    f"run {self.run.id}: {len(self.plan)} tasks, env "
                    f"{self.run.env}, executor {self.run.executor}, {where}",
                )
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
            status = "interrupted"
            _ignore_signals_until_exit()
            for outcome in self.outcomes.values():
                if outcome.attempts and outcome.status == NOT_STARTED:
                    outcome.status, outcome.ended = INTERRUPTED, time.time()
            self.logs.log(logging.ERROR, "interrupted: running tasks were stopped")
        finally:
            with _Interrupts(ignore=True):  # a second Ctrl-C must not cut the record short
                self._commit_leftovers()
                for outcome in self.outcomes.values():
                    if outcome.status == INTERRUPTED:
                        self.history.task_ended(self.run.id, outcome)
                self.history.end_run(self.run.id, status)
                self.history.close()
                summary = Summary(self.run, list(self.outcomes.values()), status, self.log_dir)
                self._hook("normandy_after_run", run=self.run, summary=summary)
                self.logs.log(logging.INFO, f"run {self.run.id} {status}")
                self.logs.close()
                (self.run_dir / "staging").remove()
        return summary

    def _setup(self) -> WorkerSetup:
        paths = tuple(str(p) for p in (self.run.root / "src", self.run.root) if p.is_dir())
        options = dict(self.project.config.executor_settings(self.options.executor))
        if self.options.address:
            options["address"] = self.options.address
        return WorkerSetup(
            self.logs.queue, paths, MappingProxyType(options), str(self.run_dir), self.run.id
        )

    def _start(self, executor: Executor) -> None:
        """Start the executor before anything is recorded: an engine that cannot start
        (:class:`ExecutorError`, or Ctrl-C while it connects) leaves no run behind."""
        try:
            with _Interrupts():
                executor.start()
        except BaseException:
            with _Interrupts(ignore=True):
                executor.shutdown(cancel=True)
                self.logs.close()
                self.history.close()
                shutil.rmtree(self.log_dir, ignore_errors=True)
                with contextlib.suppress(OSError):  # logs/ itself, if this made it
                    self.log_dir.parent.rmdir()
            raise

    def _record_start(self) -> None:
        sel = self.plan.selection
        resume = self.options.resume
        self.history.start_run(
            {
                "id": self.run.id,
                "started": self.run.started,
                "tags": list(sel.tags),
                "flows": list(sel.flows),
                "params": dict(sel.params),
                "env": self.run.env,
                "executor": self.run.executor,
                "workers": self.run.workers,
                "version": __version__,
                "fingerprint": self.plan.fingerprint(),
                "plan": self.plan.to_dict()["flows"],
                "resumed_from": resume.run_id if resume else None,
            },
            (
                {
                    "key": t.key,
                    "flow": t.flow,
                    "step": t.step,
                    "task": t.name,
                    "process": t.process,
                    "params": dict(t.params),
                }
                for t in self.plan.tasks()
            ),
        )
        if resume is not None:
            self._take_over(resume)

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
        status = "succeeded"
        for flow in self.plan.flows:
            if status == "failed" and not self.options.keep_going:
                self.logs.log(
                    logging.WARNING,
                    f"flow {flow.name} not started: an earlier flow "
                    "failed (use --keep-going to run it anyway)",
                    flow=flow.name,
                )
                continue
            store = FlowStore(self.run_dir, flow.name)
            self.logs.log(logging.INFO, f"flow {flow.name} started", flow=flow.name)
            for step in flow.steps:
                if not self._step(executor, flow.tags, step, store):
                    status = "failed"
                    self.logs.log(
                        logging.ERROR,
                        f"flow {flow.name} failed in step {step.name}; later steps not started",
                        flow=flow.name,
                    )
                    break
            else:
                self.logs.log(logging.INFO, f"flow {flow.name} succeeded", flow=flow.name)
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
            self.history.attempt_started(self.run.id, task.key, outcome.attempts, time.time())
            store.discard(task.key)
            call = self._call(task, tags, store, outcome.attempts)
            pending[executor.submit(call, task.timeout)] = task

        resumed_from = self.options.resume.run_id if self.options.resume else ""
        for task in step.tasks:
            if not self.outcomes[task.key].resumed:
                submit(task)
            else:
                self.logs.log(
                    logging.INFO,
                    f"succeeded in run {resumed_from}; not run again",
                    flow=task.flow,
                    key=task.key,
                )
        while pending or retry_at:
            now = time.time()
            for due, task in [r for r in retry_at if r[0] <= now]:
                retry_at.remove((due, task))
                submit(task)
            self.history.flush()  # what happened so far is on disk before waiting
            if not pending:
                time.sleep(max(0.0, min(d for d, _ in retry_at) - time.time()))
                continue
            timeout = max(0.0, min(d for d, _ in retry_at) - now) if retry_at else None
            done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            self._ended(done, pending, store, written, retry_at)
        # the writes of every task that succeeded, tolerated failures of others or not
        for task in step.tasks:
            if self.outcomes[task.key].status == SUCCEEDED:
                store.commit(task.key)
        return not any(self.outcomes[t.key].blocking for t in step.tasks)

    def _ended(
        self,
        done: set[Future[TaskResult]],
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
                self.logs.log(
                    logging.WARNING,
                    f"attempt {outcome.attempts} failed "
                    f"({error.kind}); retrying in {task.retry_delay:g} s",
                    flow=task.flow,
                    key=task.key,
                )
                retry_at.append((time.time() + task.retry_delay, task))
            else:
                self._failed(task, error)

    def _finish(
        self, future: Future[TaskResult], task: Task, store: FlowStore, written: dict[str, str]
    ) -> TaskError | None:
        """Record an attempt's end; keep (for the step's end) or discard its writes; return
        the error, if any."""
        error = self._attempt_error(future, task, store, written)
        outcome = self.outcomes[task.key]
        self.history.attempt_ended(
            self.run.id,
            task.key,
            outcome.attempts,
            error.kind if error else SUCCEEDED,
            None,
            outcome.ended or time.time(),
            outcome.pid,
            error,
        )
        if error is None:
            outcome.status, outcome.error = SUCCEEDED, None
            outcome.variables = tuple(store.staged_names(task.key))
            self.history.task_ended(self.run.id, outcome, outcome.variables)
            self.logs.log(
                logging.INFO, f"succeeded in {outcome.duration:.2f} s", flow=task.flow, key=task.key
            )
            self._hook("normandy_after_process", run=self.run, task=task, outcome=outcome)
        return error

    def _attempt_error(
        self, future: Future[TaskResult], task: Task, store: FlowStore, written: dict[str, str]
    ) -> TaskError | None:
        """How an attempt ended: ``None`` for a success, whose writes are then staged for
        the step's end; a failure's writes are discarded."""
        outcome = self.outcomes[task.key]
        outcome.ended = time.time()
        try:
            result = future.result()
        except WorkerCrashed as exc:
            outcome.pid = exc.pid
            store.discard(task.key)
            return TaskError(CRASHED, "WorkerCrashed", str(exc))
        except TaskTimedOut as exc:
            store.discard(task.key)
            return TaskError(TIMED_OUT, "TimedOut", str(exc))
        outcome.pid = result.pid
        if outcome.attempts == 1:  # the worker's clock: time queued for a worker not counted
            outcome.started = result.started
        outcome.ended = result.ended
        if not result.ok:
            store.discard(task.key)
            return TaskError(FAILED, result.error_type, result.error_message, result.traceback)
        clashes = [n for n in store.staged_names(task.key) if n in written]
        if clashes:
            store.discard(task.key)
            others = ", ".join(f"{n!r} (also written by {written[n]})" for n in clashes)
            return TaskError(
                FAILED,
                "VariableConflict",
                f"{task.key} and another task of the "
                f"same step wrote the variable {others}; give them different names",
            )
        for name in store.staged_names(task.key):  # committed when the step ends (SPEC 5)
            written[name] = task.key
        return None

    def _failed(self, task: Task, error: TaskError) -> None:
        outcome = self.outcomes[task.key]
        outcome.status, outcome.error, outcome.tolerated = error.kind, error, task.error_tolerance
        self.history.task_ended(self.run.id, outcome)
        what = "failed (tolerated)" if task.error_tolerance else "FAILED"
        detail = error.traceback.rstrip() if error.traceback else f"{error.type}: {error.message}"
        self.logs.log(
            logging.WARNING if task.error_tolerance else logging.ERROR,
            f"{what} after {outcome.attempts} attempt(s): {error.kind}\n{detail}",
            flow=task.flow,
            key=task.key,
        )
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
        raise KeyboardInterrupt

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
    options.console = options.console or sys.stderr
    return Orchestrator(project, plan, checked, options).execute()
