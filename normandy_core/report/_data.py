"""What a report shows, read from the run history and the run's log folder."""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

from normandy_core.history import (
    AttemptRecord,
    AttemptTotals,
    DatasetRecord,
    History,
    RunRecord,
    TaskRecord,
    VariableAccess,
)
from normandy_core.status import category
from normandy_core.store import file_part

LOG_TAIL_LINES = 40
_LOG_TAIL_BYTES = 32 * 1024


@dataclass(frozen=True)
class Attempt:
    number: int
    status: str
    started: float | None
    ended: float | None
    pid: int | None
    error: str | None
    """``Type: message`` of a failed attempt."""
    import_duration: float = 0.0
    """Seconds its worker spent importing the process's module before ``started``."""

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started


@dataclass(frozen=True)
class TaskView:
    record: TaskRecord
    attempts: tuple[Attempt, ...]
    log_tail: tuple[str, ...] | None
    """The last lines of the task's log file; ``None`` when there is no such file."""
    log_file: str
    reads: tuple[VariableAccess, ...] = ()
    """What its last attempt read (values that existed), and wrote (lineage)."""
    writes: tuple[VariableAccess, ...] = ()
    datasets: tuple[DatasetRecord, ...] = ()
    """The datasets its last attempt read and wrote."""

    @property
    def dataset_reads(self) -> list[str]:
        return [d.name for d in self.datasets if d.direction == "read"]

    @property
    def dataset_writes(self) -> list[str]:
        return [d.name for d in self.datasets if d.direction == "write"]

    @functools.cached_property
    def category(self) -> str:  # asked for several times a task by a page of 2,000
        r = self.record
        return category(r.status, r.tolerated, r.resumed)


@dataclass(frozen=True)
class RunView:
    run: RunRecord
    tasks: tuple[TaskView, ...]
    log_dir: Path
    logs_found: bool
    """Whether the run's log folder still holds its logs."""
    generated: float
    """When the report was made: the end of the timeline of a run still going."""
    attempt_totals: AttemptTotals | None = None
    """Where its tasks' attempts were not read (``collect(attempts=False)``): theirs,
    counted by the history."""

    @property
    def ended(self) -> float:
        """The run's end, else its last recorded event, else now."""
        if self.run.ended is not None:
            return self.run.ended
        times = [t for v in self.tasks for a in v.attempts for t in (a.started, a.ended) if t]
        return max([*times, self.run.started, self.generated])


def collect(
    history: History, run_id: str, logs_root: Path, *, tails: bool = True, attempts: bool = True
) -> RunView:
    """The run ``run_id`` (``last``: the most recent) as a report shows it;
    :class:`~normandy_core.history.RunNotFoundError` if no such run is recorded.
    ``tails``: read the end of each task's log (the web app reads a log when it is
    opened); ``attempts``: read each task's attempts (else only their totals: the web
    app's page of a run of many tasks draws its timeline apart, and shows a task's
    attempts when it is opened)."""
    run = history.get(run_id)
    log_dir = logs_root / run.id
    logs_found = (log_dir / "run.log").is_file()
    totals = None if attempts else history.attempt_totals(run.id)
    by_task = history.run_attempts(run.id) if attempts else {}
    accesses = history.accesses(run.id)
    datasets = history.dataset_accesses(run.id)
    tasks = []
    for record in history.tasks(run.id):
        name = f"process-{file_part(record.key)}.log"
        tail = read_tail(log_dir / name) if logs_found and tails else None
        data = accesses.get(record.key, ())
        tasks.append(
            TaskView(
                record,
                tuple(_attempt(a) for a in by_task.get(record.key, ())),
                tail,
                name,
                tuple(a for a in data if a.direction == "read" and a.hash is not None),
                tuple(a for a in data if a.direction == "write"),
                tuple(datasets.get(record.key, ())),
            )
        )
    return RunView(run, tuple(tasks), log_dir, logs_found, time.time(), totals)


def _attempt(record: AttemptRecord) -> Attempt:
    error = f"{record.error_type}: {record.error_message}" if record.error_type else None
    return Attempt(
        record.attempt,
        record.status,
        record.started,
        record.ended,
        record.pid,
        error,
        record.import_duration,
    )


def read_tail(path: Path, lines: int = LOG_TAIL_LINES) -> tuple[str, ...] | None:
    """The last ``lines`` lines of a text file (reading only its end); ``None`` if it is
    missing."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _LOG_TAIL_BYTES))
            data = handle.read()
    except OSError:
        return None
    text = data.decode("utf-8", errors="replace").splitlines()
    if size > _LOG_TAIL_BYTES and text:
        text = text[1:]  # most likely cut in the middle
    return tuple(text[-lines:])
