"""The orchestrator: sets a run up, runs its scheduler, and records how it ended.

It owns the run's lifetime — the log files, the executor, the history's record of the
run's start and end, the signals — and wires the concerns together: the
:class:`~._scheduler.Scheduler` decides what runs, :class:`~._variables.RunVariables`
holds the variables, and the history (:class:`~._recorder.HistoryRecorder`), the log
files, the plugins' hooks (:class:`~._hooks.HookCaller`) and the displays follow the run
as observers of its events.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from normandy_core import __version__
from normandy_core._children import RunChildren
from normandy_core._inbox import Inbox
from normandy_core.config import save_checked
from normandy_core.dependencies import Schedule, plan_data, schedule_of
from normandy_core.errors import NormandyError
from normandy_core.events import RunObserver
from normandy_core.execution._events import EventBus
from normandy_core.execution._hooks import HookCaller
from normandy_core.execution._preview import Preview, preview
from normandy_core.execution._recorder import HEARTBEAT, HistoryRecorder
from normandy_core.execution._reuse import Decision, Reuse
from normandy_core.execution._scheduler import Scheduler, describe_error
from normandy_core.execution._signals import (
    Interrupts,
    deadline_met,
)
from normandy_core.execution._variables import RunVariables
from normandy_core.executors import Executor, WorkerSetup
from normandy_core.history import History, RunStart, TaskStart
from normandy_core.logs import Console, LogObserver, RunLogs, level_number
from normandy_core.masking import Masker, mask_values, secret_values
from normandy_core.outcomes import Outcome, RunInfo, Summary
from normandy_core.plan import Plan, Task
from normandy_core.plugins import available_executors
from normandy_core.prepare import Borrowed
from normandy_core.project import Checked, Project
from normandy_core.resume import Resume
from normandy_core.status import FAILED, INTERRUPTED, SUCCEEDED
from normandy_core.store import SUFFIX, store_root
from normandy_core.worker import TaskCall


@dataclass
class RunOptions:
    """How to run a plan (the ``normandy run`` options that are not the selection)."""

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
    no_cache: bool = False
    """Run every task, whatever its fingerprint (``--no-cache``)."""
    rerun: tuple[str, ...] = ()
    """Patterns of tasks that run whatever their fingerprint (``--rerun``)."""
    borrowed: tuple[Borrowed, ...] = ()
    """Variables of earlier runs a partial run starts with (see :mod:`normandy_core.prepare`)."""
    quiet_once_recorded: bool = False
    """Ignore SIGINT and SIGTERM from the moment the run's end is recorded until the
    process exits, so that its exit status is always the record's (``normandy run``);
    else the handlers of before the run are back when it returns."""
    head_start: Any = None
    """What the command started for the engine ahead of the run (see
    :attr:`~normandy_core.executors.WorkerSetup.head_start`); the command closes it if
    the engine did not adopt it."""


def new_run_id() -> str:
    """Sortable by time to the millisecond: ``20261125-061530.123-a3f2``."""
    now = datetime.now()
    return f"{now:%Y%m%d-%H%M%S}.{now.microsecond // 1000:03d}-{secrets.token_hex(2)}"


class Orchestrator:
    """Runs one plan of a project, once (:meth:`execute`)."""

    def __init__(self, project: Project, plan: Plan, checked: Checked, options: RunOptions):
        self.project = project
        self.plan = plan
        self.checked = checked
        self.options = options
        root = project.root
        self.masks = secret_values(checked.credentials)
        self.run = RunInfo(
            id=new_run_id(),
            plan=plan,
            env=checked.env,
            root=root,
            executor=options.executor,
            workers=options.workers or project.config.workers or os.cpu_count() or 1,
            project=root.name,
            confs=project.config.confs,
            credentials=MappingProxyType(dict(checked.credentials)),
            mask=Masker(self.masks),
            log=self._report,
        )
        self.run_dir = store_root(root, project.config.store) / "runs" / self.run.id
        self.log_dir = root / "logs" / self.run.id
        self.outcomes = {task.key: Outcome(task) for task in plan.tasks()}
        self.variables = RunVariables(self.run_dir)
        self.history = History(root / ".normandy")
        self.reuse = Reuse(
            self.history,
            store_root(root, project.config.store),
            self.variables,
            checked,
            project.registry,
            self.masks,
            resumed=options.resume.run_id if options.resume else None,
            no_cache=options.no_cache,
            rerun=options.rerun,
        )
        self.inbox = Inbox()
        self.declared: dict[str, tuple[str, ...]] | None = None
        """Under ``schedule: dataflow``: what each task may read of other tasks' writes."""
        self.learned = self.history.imported_modules(t.key for t in plan.tasks())
        """The modules each task imported when it last succeeded, as its trace noted them
        (SPEC 20): imported ahead."""

    def execute(self) -> Summary:
        """Run the plan; the summary of how it went. A run that ends early records why;
        an error that is a bug of Normandy's is recorded, then raised."""
        executor_cls = available_executors(self.project.plugins)[self.options.executor]
        self.logs = RunLogs(
            self.log_dir,
            level_number(self.options.log_level),
            self.options.console,
            executor_cls.uses_processes,
            console_events=self.options.console_events,
            on_started=self.inbox.started,
        )
        self.children = RunChildren()
        executor = executor_cls(self.run.workers, self._setup())
        self.executor = executor
        if self._every_task_runs():  # else at the first task that runs, if any
            executor.warm_up()
        else:  # the earlier successes of every task, read at once
            self.history.prefetch(task.key for task in self.plan.tasks())
        masker = Masker(self.masks)
        self.recorder = HistoryRecorder(
            self.history, self.run.id, self._report, lambda params: mask_values(params, masker)
        )
        guests = self.options.observers
        self.events = EventBus(
            [
                self.recorder,
                LogObserver(self.logs),
                *guests,
                HookCaller(self.project.plugins, self._report),
            ],
            guests,
            self._report_failure,
        )
        self._start(executor)
        save_checked()  # the state folder is there now, on a project's first run too
        self.run = replace(self.run, where=executor.description)
        scheduler = Scheduler(
            self.plan,
            executor,
            self.outcomes,
            self.variables,
            self.events,
            self._call,
            executor_name=self.options.executor,
            keep_going=self.options.keep_going,
            resumed_from=self.options.resume.run_id if self.options.resume else "",
            wake_every=HEARTBEAT,
            inbox=self.inbox,
            reuse=self.reuse,
            module_of=self._module_of if self.project.config.preload else None,
            schedule=self._schedule(),
            pools=self.project.config.pools,
            due=self.recorder.due,
        )
        # Until the flows have run to their end, the run has failed: whatever stops it
        # early (an error of the machine or of Normandy) is never recorded as a success.
        status, reason, bug = FAILED, None, None
        stopping = Interrupts(on_signal=self.inbox.interrupt, on_second=executor.stop_now)
        with stopping:  # one handler from here to the end: no moment without one
            try:
                self.reuse.recording = self.run.id  # recorded, so it may use others
                self._borrow()
                self.events.run_started(self.run)
                try:
                    with self.history.batch():  # written each time the scheduler waits
                        status = scheduler.run()
                except BaseException:
                    stopping.stopped()  # a second signal now kills the tasks at once
                    executor.shutdown(cancel=True)
                    raise
                executor.shutdown()
            except KeyboardInterrupt:
                status = INTERRUPTED
                stopping.stopped()
                scheduler.interrupt()
            except (OSError, NormandyError) as exc:  # the machine (a full disk), the store…
                reason = describe_error(exc)
            except Exception as exc:  # a bug of Normandy's: recorded, then its traceback
                reason, bug = f"internal error: {describe_error(exc)}", exc
            finally:
                # from here on the record is written whole; once it is, with
                # quiet_once_recorded, the exit status is the record's: signals stay
                # ignored until the process exits
                stopping.ignore = True
                stopping.for_good = self.options.quiet_once_recorded
                self.children.end()
                summary = self._end(status, reason)
                deadline_met()
        if bug is not None:
            raise bug
        return summary

    # -- setting up -------------------------------------------------------------------------

    def _setup(self) -> WorkerSetup:
        root = self.run.root
        paths = tuple(str(p) for p in (root / "src", root) if p.is_dir())
        options = dict(self.project.config.executor_settings(self.options.executor))
        if self.options.address:
            options["address"] = self.options.address
        return WorkerSetup(
            self.logs.queue,
            paths,
            MappingProxyType(options),
            str(self.run_dir),
            self.run.id,
            self.logs.level,
            self.options.head_start,
        )

    def _every_task_runs(self) -> bool:
        """Whether no task of the plan can be reused (cache off, no ``--resume``): then the
        executor warms up at once; else at the first task that runs (a run whose every
        task is reused starts no process and imports nothing)."""
        if self.options.resume is not None:
            return False
        return self.options.no_cache or not any(t.cache for t in self.plan.tasks())

    def _schedule(self) -> Schedule:
        """``confs.schedule``: under ``dataflow``, what each task waits for, and what it
        may read (:mod:`normandy_core.dependencies`)."""
        if self.project.config.schedule != "dataflow":
            return schedule_of(self.plan, None)
        from normandy_core.project import signature_or_none

        datasets = self.checked.datasets.names if self.checked.datasets is not None else ()
        data = plan_data(
            self.plan, lambda name: signature_or_none(self.project.registry, name), datasets
        )
        self.declared = {t.key: data[t.key].variables_read(t.flow) for t in self.plan.tasks()}
        return schedule_of(self.plan, data)

    def _module_of(self, task: Task) -> tuple[str, ...]:
        """Its process's module, then the modules it imported when it last ran."""
        module = self.project.registry.get(task.process).target.partition(":")[0]
        return (module, *self.learned.get(task.key, ()))

    def _start(self, executor: Executor) -> None:
        """Record the run, then start the executor: a resume already in progress
        (:class:`~normandy_core.errors.ResumeError`), an engine that cannot start
        (:class:`~normandy_core.errors.ExecutorError`) or Ctrl-C while it connects leaves
        no run behind."""
        try:
            with Interrupts(on_signal=self.inbox.interrupt):
                self._record_start()
                try:
                    executor.start()
                except BaseException:
                    self.history.forget_run(self.run.id)
                    raise
        except BaseException:
            with Interrupts(ignore=True):
                executor.shutdown(cancel=True)
                self.children.end()
                self.logs.close()
                self.history.close()
                shutil.rmtree(self.log_dir, ignore_errors=True)
                with contextlib.suppress(OSError):  # logs/ itself, if this made it
                    self.log_dir.parent.rmdir()
            raise

    def _record_start(self) -> None:
        sel = self.plan.selection
        resume = self.options.resume
        mask = Masker(self.masks)  # credentials are never stored: params that hold one

        def masked(value: Any) -> Any:  # written as JSON at once: no copy to mask nothing
            return mask_values(value, mask) if mask.secrets else value

        self.history.start_run(
            RunStart(
                id=self.run.id,
                started=self.run.started,
                tags=sel.tags,
                flows=sel.flows,
                params=masked(dict(sel.params)),
                env=self.run.env,
                executor=self.run.executor,
                workers=self.run.workers,
                version=__version__,
                fingerprint=self.plan.fingerprint(),
                plan=masked(self.plan.to_dict()["flows"]),
                resumed_from=resume.run_id if resume else None,
                part=sel.part,
            ),
            (
                TaskStart(t.key, t.flow, t.step, t.name, t.process, masked(dict(t.params)))
                for t in self.plan.tasks()
            ),
        )

    def _borrow(self) -> None:
        """A partial run's inputs, from the earlier runs that made them (claimed first:
        ``gc`` cannot prune them from under this run)."""
        store = store_root(self.run.root, self.project.config.store)
        for b in self.options.borrowed:
            if not self.reuse.claim(b.run_id):
                raise NormandyError(
                    f"the input {b.name} of this partial run comes from run {b.run_id}, "
                    "which normandy gc pruned meanwhile: run again (its producer then runs "
                    "first, or run it with --from)"
                )
            source = store / "runs" / b.run_id / "vars" / b.flow / (b.name + SUFFIX)
            self.variables.bind_committed(b.flow, b.name, source, b.hash)

    def _call(self, task: Task, tags: tuple[str, ...], attempt: int) -> TaskCall:
        spec = self.project.registry.get(task.process)
        store = self.variables.flow(task.flow)
        datasets = self.checked.datasets
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
            inputs=dict(task.inputs),
            outputs=task.outputs,
            datasets=datasets.of_task(task.key) if datasets else (),
            dataset_names=datasets.names if datasets else frozenset(),
            arguments=_arguments(task),
            declared=self._declared_of(task),
            outputs_dir=str(store.vars_dir) if task.element is not None else "",
            scope=task.scope,
            modules=self.learned.get(task.key, ()),
            tracing=self.reuse.tracing(task),
        )

    def _declared_of(self, task: Task) -> tuple[str, ...] | None:
        if self.declared is None:
            return None
        key = task.element.parent if task.element is not None else task.key
        return self.declared.get(key, ())

    # -- ending -----------------------------------------------------------------------------

    def _end(self, status: str, reason: str | None) -> Summary:
        """Record the run's end whatever happened, and clean up."""
        problems = [reason] if reason else []
        try:
            self.variables.commit_leftovers(self.outcomes.values())
            self.variables.clean_up()
        except OSError as exc:  # staged writes stay where they are, for --resume
            problems.append(f"cleaning up the store: {describe_error(exc)}")
        reason = "; ".join(problems) or None
        if reason and status == SUCCEEDED:
            status = FAILED
        summary = Summary(
            self.run,
            tuple(outcome.record() for outcome in _in_order(self.outcomes)),
            status,
            self.log_dir,
            reason=reason,
            log_problems=self.logs.problems,  # the list itself: it grows until close
        )
        try:
            self.events.run_ended(summary)
        finally:
            self.history.close()
            self.logs.close()
        return summary

    def _report(self, level: int, message: str) -> None:
        self.logs.log(level, message)

    def _report_failure(self, message: str, exc: BaseException) -> None:
        self.logs.logger.error(
            message,
            exc_info=(type(exc), exc, exc.__traceback__),
            extra={"flow": None, "key": None, "event": False},
        )


def _arguments(task: Task) -> dict[str, object]:
    """What a task of a map gets as it is: its element, under ``map_as``."""
    element, entry = task.element, task.entry
    if element is None or entry is None or entry.map is None:
        return {}
    return {entry.map.param: element.value}


def _in_order(outcomes: dict[str, Outcome]) -> list[Outcome]:
    """The outcomes in plan order, a mapped task's elements after it."""
    elements: dict[str, list[Outcome]] = {}
    ordered = []
    for outcome in outcomes.values():
        element = outcome.task.element
        if element is not None:
            elements.setdefault(element.parent, []).append(outcome)
        else:
            ordered.append(outcome)
    if not elements:
        return ordered
    return [o for outcome in ordered for o in (outcome, *elements.get(outcome.task.key, ()))]


def explain_plan(
    project: Project, plan: Plan, checked: Checked, options: RunOptions
) -> list[Decision]:
    """What ``run --explain`` would say of each task of ``plan``, running nothing
    (``run --dry-run --explain``)."""
    history = History(project.root / ".normandy")
    try:
        variables = Preview()
        for b in options.borrowed:
            variables.borrow(b.flow, b.name, b.hash)
        reuse = Reuse(
            history,
            store_root(project.root, project.config.store),
            variables,
            checked,
            project.registry,
            secret_values(checked.credentials),
            resumed=options.resume.run_id if options.resume else None,
            no_cache=options.no_cache,
            rerun=options.rerun,
        )
        return preview(reuse, variables, plan)
    finally:
        history.close()


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
    summary = Orchestrator(project, plan, checked, options).execute()
    from normandy_core.retention import collect, keep_runs

    keep = keep_runs(project.config.keep_runs)
    if keep:  # the store stays bounded, with or without the CLI (0: every run is kept)
        summary = replace(summary, collected=collect(project.root, project.config.store, keep=keep))
    return summary
