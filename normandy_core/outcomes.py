"""What a run produces, as plain data: how each attempt failed (:class:`TaskError`), each
attempt (:class:`Attempt`), how each task ended (:class:`Outcome`, kept up to date by the
scheduler; :class:`TaskOutcome`, its frozen record), the run itself (:class:`RunInfo`)
and its :class:`Summary`. Run observers receive these objects; plugins' hooks receive
frozen records only (:class:`RunInfo`, :class:`TaskOutcome`, :class:`Summary`,
:class:`TaskError`): a hook cannot change what the run records."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from normandy_core.fingerprint import Fingerprint
from normandy_core.plan import Plan, Task
from normandy_core.status import (
    CACHED,
    FAILED,
    FAILURES,
    INTERRUPTED,
    MAPPED,
    NOT_STARTED,
    RUNNING,
    SUCCEEDED,
    tally,
)

if TYPE_CHECKING:
    from normandy_core.datasets._access import DatasetAccess
    from normandy_core.retention import Collected


@dataclass(frozen=True)
class TaskError:
    """Why an attempt failed: ``kind`` is ``failed``, ``crashed`` or ``timed out``."""

    kind: str
    type: str
    message: str
    traceback: str = ""


@dataclass
class Attempt:
    """One attempt of a task: submitted to the executor, started by a worker (once it said
    so), ended with ``status`` (``succeeded``, ``failed``, ``crashed``, ``timed out`` or
    ``interrupted``; ``running`` until then)."""

    task: Task
    number: int
    """From 1."""
    submitted: float
    pid: int | None = None
    """The worker process that ran it, where known."""
    started: float | None = None
    ended: float | None = None
    status: str = RUNNING
    error: TaskError | None = None
    reads: tuple[tuple[str, str | None, int | None], ...] = ()
    """``(variable, content hash, size)`` of what it read from earlier steps (hash and
    size ``None``: it looked for the variable, which did not exist)."""
    writes: tuple[tuple[str, str, int, str], ...] = ()
    """``(variable, content hash, size, type)`` of what it wrote."""
    datasets: tuple[DatasetAccess, ...] = ()
    """The datasets it read and wrote (SPEC 16): stamps, content hashes, versions."""
    fingerprint: Fingerprint | None = None
    import_duration: float = 0.0
    """Seconds its worker spent importing the process's module before ``started`` (0
    where the module was there already: preloaded, or imported by an earlier task)."""

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started


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
    fingerprint: Fingerprint | None = None
    """What its result depended on (SPEC 13), for its last attempt or the success reused."""
    cached_from: str | None = None
    """The run whose success was reused for it (status ``cached``)."""
    reason: str | None = None
    """Why it ran, or was reused (``--explain``'s words)."""
    writes: tuple[tuple[str, str, int, str], ...] = ()
    """``(variable, content hash, size, type)`` of what it wrote — for a reused task, what
    the success it reused wrote."""
    import_duration: float = 0.0
    """Seconds its attempts spent importing the process's module, not counted in its
    ``duration`` (which starts when its first attempt's work began)."""
    waited: float = 0.0
    """Seconds it waited for units of a pool (``confs.pools``) before its attempts were
    submitted."""

    @property
    def duration(self) -> float:
        return (self.ended - self.started) if self.started and self.ended else 0.0

    @property
    def blocking(self) -> bool:
        """A failure that stops its flow (a map's group is not one: its elements are)."""
        return self.status not in (SUCCEEDED, CACHED, NOT_STARTED, MAPPED) and not self.tolerated

    def record(self) -> TaskOutcome:
        """How the task stands now, frozen."""
        return TaskOutcome(**{name: getattr(self, name) for name in _outcome_fields()})


@dataclass(frozen=True)
class TaskOutcome:
    """How a task ended, as a frozen record: what ``normandy_after_process`` receives as
    ``outcome`` and :attr:`Summary.outcomes` holds (the attributes of :class:`Outcome`)."""

    task: Task
    status: str = NOT_STARTED
    tolerated: bool = False
    attempts: int = 0
    started: float | None = None
    ended: float | None = None
    pid: int | None = None
    error: TaskError | None = None
    resumed: bool = False
    variables: tuple[str, ...] = ()
    fingerprint: Fingerprint | None = None
    cached_from: str | None = None
    reason: str | None = None
    writes: tuple[tuple[str, str, int, str], ...] = ()
    import_duration: float = 0.0
    waited: float = 0.0

    @property
    def duration(self) -> float:
        return (self.ended - self.started) if self.started and self.ended else 0.0

    @property
    def blocking(self) -> bool:
        """A failure that stops its flow (a map's group is not one: its elements are)."""
        return self.status not in (SUCCEEDED, CACHED, NOT_STARTED, MAPPED) and not self.tolerated


@dataclass(frozen=True)
class RunInfo:
    """What hooks receive as ``run`` (frozen)."""

    id: str
    plan: Plan
    env: str
    root: Path
    executor: str
    workers: int
    started: float = field(default_factory=time.time)
    where: str = ""
    """Where the tasks run, in words, once the executor has started (``a local cluster of
    2 workers at tcp://…``); empty for the executors that need no words."""
    project: str = ""
    """The project's name: the name of its folder."""
    confs: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """The project's ``confs`` as checked (``${env:…}`` replaced, ``envs`` left out):
    where a plugin finds its own settings (``confs.notify`` for normandy-notify)."""
    credentials: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """The env's credentials, for a plugin that needs one (an SMTP login): never show,
    log or store them."""
    mask: Callable[[str], str] = field(default=str, repr=False, compare=False)
    """Masks every credential value in a text as ``***``: apply it to whatever a plugin
    sends or shows."""
    log: Callable[[int, str], None] = field(default=lambda level, message: None, repr=False,
                                            compare=False)  # fmt: skip
    """Writes a line (at a ``logging`` level) to the run's log and console; callable from
    any thread from ``normandy_before_run`` until ``normandy_after_run`` returns."""


@dataclass(frozen=True)
class Summary:
    """Every task's outcome and the run's status (``succeeded``, ``failed``,
    ``interrupted``), frozen."""

    run: RunInfo
    outcomes: tuple[TaskOutcome, ...]
    status: str
    log_dir: Path
    ended: float = field(default_factory=time.time)
    reason: str | None = None
    """Why the run ended early (an error of the machine or of Normandy), if it did."""
    log_problems: list[str] = field(default_factory=list)
    """What could not be logged (a log file that could not be written…), in words."""
    collected: Collected | None = None
    """What ``confs.keep_runs`` pruned once the run ended (``None``: not set)."""

    @property
    def exit_code(self) -> int:
        return {SUCCEEDED: 0, FAILED: 1, INTERRUPTED: 130}[self.status]

    @property
    def duration(self) -> float:
        return self.ended - self.run.started

    @property
    def counts(self) -> dict[str, int]:
        """How many tasks ended how (see :func:`normandy_core.status.tally`)."""
        return tally((o.status, o.tolerated, o.resumed) for o in self.outcomes)

    @property
    def failing(self) -> TaskOutcome | None:
        """The first task whose failure stopped its flow."""
        return next((o for o in self.outcomes if o.status in FAILURES and o.blocking), None)

    def to_dict(self) -> dict[str, Any]:
        failing = self.failing
        return {
            "run_id": self.run.id,
            "status": self.status,
            "env": self.run.env,
            "logs": str(self.log_dir),
            "started": self.run.started,
            "ended": self.ended,
            "duration": round(self.duration, 3),
            "counts": self.counts,
            "failing_task": failing.task.key if failing else None,
            "reason": self.reason,
            "log_problems": list(self.log_problems),
            "tasks": [
                {
                    "key": o.task.key,
                    "flow": o.task.flow,
                    "step": o.task.step,
                    "task": o.task.name,
                    "status": o.status,
                    "resumed": o.resumed,
                    "tolerated": o.tolerated,
                    "attempts": o.attempts,
                    "started": o.started,
                    "ended": o.ended,
                    "duration": round(o.duration, 3),
                    "import_duration": round(o.import_duration, 3),
                    "waited": round(o.waited, 3),
                    "pid": o.pid,
                    "error": None
                    if o.error is None
                    else {"kind": o.error.kind, "type": o.error.type, "message": o.error.message},
                }
                for o in self.outcomes
            ],
        }


@functools.cache
def _outcome_fields() -> tuple[str, ...]:
    """The names of :class:`TaskOutcome`'s fields (read once: every task's end makes one)."""
    return tuple(f.name for f in fields(TaskOutcome))
