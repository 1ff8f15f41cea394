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
import multiprocessing
import queue
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from normandy_core._packets import PacketQueue
from normandy_core.events import RunObserver
from normandy_core.status import INTERRUPTED, SUCCEEDED
from normandy_core.store import file_part

if TYPE_CHECKING:
    from normandy_core.outcomes import Outcome, RunInfo, Summary, TaskError
    from normandy_core.plan import Flow, Step, Task


class Console(Protocol):
    """Where console lines go: a text stream, or a progress display that prints them."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


StartedCallback = Callable[[str, int, int, float], None]
"""Called (in the log thread) with ``key, attempt, pid, when`` as a worker starts an attempt."""

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warnings": logging.WARNING,
    "error": logging.ERROR,
    "errors": logging.ERROR,
    "critical": logging.CRITICAL,
}

_FORMAT = "%(asctime)s %(levelname)-7s %(where)s | %(message)s"


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


class _Router(logging.Handler):
    """Writes each record to run.log, its flow's and its task's files, and the console
    (event lines only with ``console_events``); passes start notices to ``on_started``."""

    MAX_OPEN = 64
    """Log files kept open at once: a run of thousands of tasks has a file per task, more
    than a process may open; the least recently written is closed (and reopened in append
    mode if its task writes again)."""

    def __init__(
        self,
        log_dir: Path,
        level: int,
        console: Console | None,
        console_events: bool,
        on_started: StartedCallback | None,
    ) -> None:
        super().__init__(logging.DEBUG)
        self.log_dir = log_dir
        self.run_level = level
        self.files: OrderedDict[str, IO[str]] = OrderedDict()
        self.console = console
        self.console_events = console_events
        self.on_started = on_started
        self.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))

    def _file(self, name: str) -> IO[str]:
        handle = self.files.get(name)
        if handle is not None:
            self.files.move_to_end(name)
            return handle
        if len(self.files) >= self.MAX_OPEN:
            self.files.popitem(last=False)[1].close()
        handle = self.files[name] = open(self.log_dir / name, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        return handle

    def emit(self, record: logging.LogRecord) -> None:
        started = getattr(record, "started", None)
        if started is not None:  # a worker's start notice: it bypassed every logger's level
            if self.on_started is not None:
                self.on_started(*started)
            if record.levelno < self.run_level:
                return
        key = getattr(record, "key", None)
        flow = getattr(record, "flow", None)
        record.where = key or (flow or "normandy")
        text = self.format(record) + "\n"
        targets = ["run.log"]
        if flow:
            targets.append(f"flow-{file_part(flow)}.log")
        if key:
            targets.append(f"process-{file_part(key)}.log")
        for name in targets:
            handle = self._file(name)
            handle.write(text)
            handle.flush()
        if (
            self.console is not None
            and record.levelno >= self.run_level
            and (self.console_events or not getattr(record, "event", False))
        ):
            self.console.write(text)
            self.console.flush()

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()
        self.files.clear()
        super().close()


class QueueHandler(logging.handlers.QueueHandler):
    """Puts records with a blocking ``put``: with a :class:`PacketQueue` the writes go
    straight into its pipe, so that a worker's records are all in it before the worker
    returns its result (and the orchestrator's line about the task ends up after them)."""

    def enqueue(self, record: logging.LogRecord) -> None:
        self.queue.put(record)  # type: ignore[attr-defined]


class _Listener(logging.handlers.QueueListener):
    def dequeue(self, block: bool) -> logging.LogRecord:
        return self.queue.get()  # type: ignore[no-any-return]

    def enqueue_sentinel(self) -> None:
        self.queue.put(None)  # type: ignore[attr-defined]  # QueueListener's sentinel


class RunLogs:
    """The log files of one run and the queue every process's records go through.

    ``console`` receives the lines at ``level`` or above, event lines only with
    ``console_events``; ``on_started`` is told of each attempt a worker starts.
    """

    def __init__(
        self,
        log_dir: Path,
        level: int,
        console: Console | None,
        across_processes: bool,
        mp_context: Any = None,
        *,
        console_events: bool = True,
        on_started: StartedCallback | None = None,
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = log_dir
        self.level = level
        self.problems: list[str] = []
        """Log files that could not be written, and why (recorded with the run)."""
        ctx = mp_context or multiprocessing
        self.queue: Any = PacketQueue(ctx) if across_processes else queue.Queue()
        self.router = _Router(log_dir, level, console, console_events, on_started)
        self.listener = _Listener(self.queue, self.router)
        self.listener.start()
        self.logger = logging.getLogger(f"normandy.run.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(level)
        self.logger.addHandler(QueueHandler(self.queue))

    def log(
        self,
        level: int,
        message: str,
        *,
        flow: str | None = None,
        key: str | None = None,
        event: bool = False,
    ) -> None:
        """A record of the orchestrator's, filed with ``flow``/``key`` where given;
        ``event`` for an account of the run's progress."""
        self.logger.log(level, message, extra={"flow": flow, "key": key, "event": event})

    def close(self) -> None:
        self.listener.stop()
        self.router.close()
        self.logger.handlers.clear()


class LogObserver(RunObserver):
    """The run's progress, as event lines in its log files."""

    def __init__(self, logs: RunLogs) -> None:
        self.logs = logs

    def _log(self, level: int, message: str, flow: str | None = None, key: str | None = None):
        self.logs.log(level, message, flow=flow, key=key, event=True)

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

    def task_resumed(self, task: Task, run_id: str) -> None:
        self._log(logging.INFO, f"succeeded in run {run_id}; not run again", task.flow, task.key)

    def task_decided(self, task: Task, reused_from: str | None, reason: str) -> None:
        if reused_from is None:
            self._log(logging.DEBUG, f"runs: {reason}", task.flow, task.key)

    def task_cached(self, task: Task, run_id: str) -> None:
        self._log(
            logging.INFO,
            f"cached (from {run_id}): nothing it depends on changed; not run",
            task.flow,
            task.key,
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
