"""A run's logs (SPEC 8): the console, ``logs/<run_id>/run.log``, ``flow-<flow>.log`` and
``process-<flow>.<step>.<task>.log``, fed from one queue by a listener thread.

Two kinds of lines reach them: what processes log or print, and the run's own account of
its progress (flows, steps, attempts), which :class:`LogObserver` writes from the run's
events. The latter are *event* lines: where a progress display shows the run on the
console, they go to the files only.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
from pathlib import Path
from typing import TYPE_CHECKING, Any

from normandy_core._logrouter import (
    LINES,
    LISTENER_THREAD,
    Console,
    Listener,
    Router,
    StartedCallback,
    is_lines,
    lines_message,
    lines_records,
    record_item,
)
from normandy_core._packets import PacketQueue
from normandy_core.events import RunObserver
from normandy_core.status import INTERRUPTED, SUCCEEDED

if TYPE_CHECKING:
    from normandy_core.outcomes import Outcome, RunInfo, Summary, TaskError
    from normandy_core.plan import Flow, Step, Task

__all__ = [
    "LEVELS",
    "LINES",
    "LISTENER_THREAD",
    "Console",
    "LogObserver",
    "QueueHandler",
    "RunLogs",
    "StartedCallback",
    "is_lines",
    "level_number",
    "lines_message",
    "lines_records",
    "start_notice",
]

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warnings": logging.WARNING,
    "error": logging.ERROR,
    "errors": logging.ERROR,
    "critical": logging.CRITICAL,
}


def level_number(name: str) -> int:
    """``warnings`` -> ``logging.WARNING``; ``ValueError`` for an unknown name."""
    try:
        return LEVELS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r}; use one of: {', '.join(LEVELS)}") from None


def start_notice(flow: str, key: str, attempt: int, pid: int, when: float) -> logging.LogRecord:
    """The record a worker puts on the log queue as it starts an attempt: filed as the
    event line ``attempt N started on worker PID``, and how the orchestrator learns which
    worker runs what, and since when (its ``started``)."""
    return logging.makeLogRecord(
        {
            "name": "normandy.worker",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": f"attempt {attempt} started on worker {pid}",
            "created": when,
            "flow": flow,
            "key": key,
            "event": True,
            "started": (key, attempt, pid, when),
        }
    )


class QueueHandler(logging.handlers.QueueHandler):
    """Puts records with a blocking ``put``: with a :class:`PacketQueue` the writes go
    straight into its pipe, so that a worker's records are all in it before the worker
    returns its result (and the orchestrator's line about the task ends up after them)."""

    def enqueue(self, record: logging.LogRecord) -> None:
        self.queue.put(record)  # type: ignore[attr-defined]


class RunLogs:
    """The log files of one run and the queue every process's records go through.

    ``console`` receives the lines at ``level`` or above, event lines only with
    ``console_events``; ``on_started`` is told of each attempt a worker starts.
    :attr:`problems` says what could not be logged (a file that could not be written…),
    each also shown on the console as it happens.
    """

    def __init__(
        self,
        log_dir: Path,
        level: int,
        console: Console | None,
        across_processes: bool,
        *,
        console_events: bool = True,
        on_started: StartedCallback | None = None,
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = log_dir
        self.level = level
        self.queue: Any = PacketQueue() if across_processes else queue.Queue()
        self.router = Router(log_dir, level, console, console_events, on_started)
        self.listener = Listener(self.queue, self.router)
        self.listener.start()
        self.logger = logging.getLogger(f"normandy.run.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(level)
        self.logger.addHandler(QueueHandler(self.queue))
        self._put = getattr(self.queue, "put_local", self.queue.put)
        """How this process's own records go on the queue: kept as they are where the
        queue can (a pipe's), else put."""

    def log(
        self,
        level: int,
        message: str,
        *,
        flow: str | None = None,
        key: str | None = None,
        event: bool = False,
        own_file: bool = True,
    ) -> None:
        """A record of the orchestrator's, filed with ``flow``/``key`` where given;
        ``event`` for an account of the run's progress; ``own_file=False``: not in the
        task's own file (see :func:`~normandy_core._logrouter.record_item`).

        A plain tuple (:func:`~normandy_core._logrouter.record_item`), not a record made
        and put by :attr:`logger`: a run writes a few per task, and the logging module's
        way (looking up the caller's frame, the handlers' locks, pickling it through the
        pipe to this process's own listener) cost ten times more."""
        if level < self.level:
            return
        self._put(record_item(flow, key, level, message, event, own_file))

    @property
    def problems(self) -> list[str]:
        """What could not be logged, in words (the list grows until :meth:`close`)."""
        return self.router.problems

    def close(self) -> None:
        self.listener.stop()
        self.router.close()
        self.logger.handlers.clear()
        # tasks that ran in this process (serial) routed its module loggers to them
        from normandy_core.tasklog import release_module_loggers

        release_module_loggers()


class LogObserver(RunObserver):
    """The run's progress, as event lines in its log files."""

    def __init__(self, logs: RunLogs) -> None:
        self.logs = logs

    def _log(
        self,
        level: int,
        message: str,
        flow: str | None = None,
        key: str | None = None,
        own_file: bool = True,
    ) -> None:
        self.logs.log(level, message, flow=flow, key=key, event=True, own_file=own_file)

    def run_started(self, run: RunInfo) -> None:
        self._log(
            logging.INFO,
            f"run {run.id}: {len(run.plan)} tasks, env {run.env}, executor {run.executor}, "
            f"{run.where or f'{run.workers} workers'}",
        )

    def flow_started(self, flow: Flow) -> None:
        self._log(logging.INFO, f"flow {flow.name} started", flow.name)

    def flow_skipped(self, flow: Flow) -> None:
        self._log(
            logging.WARNING,
            f"flow {flow.name} not started: an earlier flow failed (use --keep-going to run "
            "it anyway)",
            flow.name,
        )

    def step_started(self, step: Step) -> None:
        tasks = f"{len(step.tasks)} task{'s' * (len(step.tasks) != 1)}"
        self._log(logging.INFO, f"step {step.name} started: {tasks}", step.flow)

    # a reused task did not run: its line is in run.log and its flow's file, and it has no
    # file of its own in this run (its log is the one of the run that ran it); a step of
    # 2,000 reused tasks made 2,000 files of a line
    def task_resumed(self, task: Task, run_id: str) -> None:
        self._log(
            logging.INFO,
            f"cached (from {run_id}): succeeded in the run this one resumes; not run again",
            task.flow,
            task.key,
            own_file=False,
        )

    def task_decided(self, task: Task, reused_from: str | None, reason: str) -> None:
        if reused_from is None:
            self._log(logging.DEBUG, f"runs: {reason}", task.flow, task.key)

    def task_cached(self, task: Task, run_id: str) -> None:
        self._log(
            logging.INFO,
            f"cached (from {run_id}): nothing it depends on changed; not run",
            task.flow,
            task.key,
            own_file=False,
        )

    def task_retrying(self, task: Task, attempt: int, error: TaskError, delay: float) -> None:
        self._log(
            logging.WARNING,
            f"attempt {attempt} failed ({error.kind}): {error.type}: {error.message}; "
            f"retrying in {delay:g} s",
            task.flow,
            task.key,
        )

    def task_ended(self, outcome: Outcome) -> None:
        task, error = outcome.task, outcome.error
        if outcome.status == SUCCEEDED:
            self._log(logging.INFO, f"succeeded in {outcome.duration:.2f} s", task.flow, task.key)
        elif outcome.status == INTERRUPTED:
            self._log(logging.WARNING, "interrupted", task.flow, task.key)
        elif error is not None:
            what = "failed (tolerated)" if outcome.tolerated else "FAILED"
            detail = error.traceback.rstrip() or f"{error.type}: {error.message}"
            self._log(
                logging.WARNING if outcome.tolerated else logging.ERROR,
                f"{what} after {outcome.attempts} attempt(s): {error.kind}\n{detail}",
                task.flow,
                task.key,
            )

    def step_ended(self, step: Step, ok: bool) -> None:
        if ok:
            self._log(logging.INFO, f"step {step.name} ended", step.flow)
        else:
            self._log(
                logging.ERROR,
                f"flow {step.flow} failed in step {step.name}; later steps not started",
                step.flow,
            )

    def flow_ended(self, flow: Flow, status: str) -> None:
        if status == SUCCEEDED:
            self._log(logging.INFO, f"flow {flow.name} succeeded", flow.name)

    def run_ended(self, summary: Summary) -> None:
        if summary.status == INTERRUPTED:
            self._log(logging.ERROR, "interrupted: running tasks were stopped")
        self._log(logging.INFO, f"run {summary.run.id} {summary.status}")
