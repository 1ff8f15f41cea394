"""What the history holds, as typed records: what a run writes when it starts
(:class:`RunStart`, :class:`TaskStart`) and what the commands read back (:class:`RunRecord`,
:class:`TaskRecord`, :class:`AttemptRecord`, :class:`VariableAccess`). Rows are read by
column name, so a column added by a later schema never shifts the others."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from normandy_core.fingerprint import Fingerprint


@dataclass(frozen=True)
class TaskStart:
    """A task of a run being recorded: where it stands in the plan, and its params."""

    key: str
    flow: str
    step: str
    task: str
    process: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class RunStart:
    """A run being recorded, as it starts. ``params`` and ``plan`` must already be masked
    (credentials are never stored)."""

    id: str
    started: float
    tags: tuple[str, ...]
    flows: tuple[str, ...]
    params: Mapping[str, Any]
    env: str
    executor: str
    workers: int
    version: str
    fingerprint: str
    plan: list[dict[str, Any]]
    resumed_from: str | None = None
    part: tuple[tuple[str, str], ...] = ()
    """A partial run's ``--from``/``--to``/``--only`` patterns, as given."""


@dataclass(frozen=True)
class RunRecord:
    """A recorded run. ``status`` is how it ended (``succeeded``, ``failed``,
    ``interrupted``) or ``running``; a run whose ``normandy`` process is gone without
    ending it reads as ``interrupted``, with ``ended`` its last sign of life."""

    id: str
    status: str
    started: float
    ended: float | None
    tags: list[str]
    flows: list[str]
    params: dict[str, Any]
    env: str
    executor: str
    workers: int
    version: str
    fingerprint: str
    plan: list[dict[str, Any]]
    pid: int
    host: str
    resumed_from: str | None
    reason: str | None = None
    """Why the run ended early: an error of Normandy or of the machine, or its process
    being killed; ``None`` when it ran to its end (failed tasks are not a reason)."""
    log_problems: list[str] = field(default_factory=list)
    """Log files the run could not write, and why."""
    pruned: float | None = None
    """When ``normandy gc`` deleted its variables and logs (its rows stay)."""
    part: list[list[str]] = field(default_factory=list)
    """A partial run's patterns, ``[["--only", "two.double"]]``; empty for a whole run."""

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started

    def to_dict(self) -> dict[str, Any]:
        """The run as ``normandy runs --json`` and ``normandy ui`` give it: every field
        but its plan, with its duration. Its values are the record's own (JSON-like, read
        only): ``dataclasses.asdict`` copied the whole plan deeply only to drop it."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "plan"}
        data["duration"] = self.duration
        return data

    @property
    def selection(self) -> str:
        """What the run was started with: ``flows a,b; tags x; limit=100``."""
        parts = []
        if self.flows:
            parts.append("flows " + ",".join(self.flows))
        if self.tags or not self.flows:
            parts.append("tags " + (",".join(self.tags) if self.tags else "default"))
        if self.params:
            parts.append(" ".join(f"{k}={v}" for k, v in self.params.items()))
        if self.part:
            parts.append(" ".join(f"{flag} {pattern}" for flag, pattern in self.part))
        return "; ".join(parts)


@dataclass(frozen=True)
class RunState:
    """A recorded run as pruning needs it: no plan, params or fingerprint read (a
    history of thousands of runs is pruned at every run's end)."""

    id: str
    status: str
    """As it reads now: a run whose process is gone reads ``interrupted``."""
    started: float
    pruned: float | None


@dataclass(frozen=True)
class RunIndex:
    """A recorded run as a list of many runs needs it, without reading its plan: its
    status as it reads now, when it started, the flows its plan holds and their tags."""

    id: str
    status: str
    started: float
    tags: tuple[str, ...]
    """Asked for (``--tags``)."""
    flows: tuple[str, ...]
    """Of its plan."""
    flow_tags: tuple[str, ...]
    """The tags of the flows of its plan."""
    pruned: float | None


@dataclass(frozen=True)
class TaskRecord:
    """A task of a recorded run, as it ended (or stands, in a run still going)."""

    key: str
    flow: str
    step: str
    task: str
    process: str
    params: dict[str, Any]
    status: str
    tolerated: bool
    attempts: int
    started: float | None
    ended: float | None
    pid: int | None
    error_kind: str | None
    error_type: str | None
    error_message: str | None
    traceback: str | None
    variables: list[str]
    """The variables it wrote (committed)."""
    resumed: bool
    """Succeeded in the run this one resumed: not run again."""
    fingerprint: str | None = None
    cached_from: str | None = None
    """The run whose success this task reused (status ``cached``)."""
    reason: str | None = None
    """Why it ran, or was reused (``--explain``'s words)."""
    import_duration: float = 0.0
    """Seconds its attempts spent importing the process's module, apart from its
    ``duration`` (``started`` is when its work began)."""
    waiting: str | None = None
    """The pool (``confs.pools``) it waits for, while it does (a run still going)."""
    waited: float = 0.0
    """Seconds it waited for units of a pool."""
    parent: str | None = None
    """For a task of a ``map``: the key of the mapped task it is an element of."""

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started


@dataclass(frozen=True)
class AttemptTotals:
    """A run's attempts, counted: how many, of how many tasks, and their time."""

    attempts: int
    tasks: int
    """Tasks with at least one attempt (that ran)."""
    seconds: float
    """The attempts' durations, summed (those that have ended)."""


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of a task."""

    attempt: int
    status: str
    started: float | None
    ended: float | None
    pid: int | None
    error_kind: str | None
    error_type: str | None
    error_message: str | None
    fingerprint: str | None = None
    import_duration: float = 0.0
    """Seconds its worker spent importing the process's module before ``started``."""

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started


@dataclass(frozen=True)
class VariableAccess:
    """A variable an attempt read or wrote (lineage, SPEC 12): ``hash`` of its content
    and ``size`` in bytes, where known."""

    flow: str
    name: str
    direction: str
    """``read`` or ``write``."""
    hash: str | None = None
    size: int | None = None
    type: str | None = None
    """The value's type (``pandas.core.frame.DataFrame``), for what was written."""


@dataclass(frozen=True)
class Written:
    """A variable a run's task wrote and committed: ``task`` is its key; ``type`` and
    ``size`` where the lineage recorded them; ``cached_from``, the run whose success the
    task reused (its variable bound into this run, not written again)."""

    flow: str
    name: str
    task: str
    type: str | None = None
    size: int | None = None
    cached_from: str | None = None


class Success:
    """A success of a task that a later run may reuse: the run, the fingerprint it
    recorded, its params (as stored: credentials masked), what it wrote, and ``origin``,
    the run that actually ran it (itself, or the run it reused).

    Read from the history, its fingerprint and params are parsed where they are asked
    for: a task is most often reused from its newest success, and the others (up to 20
    a task) are never looked at."""

    __slots__ = ("run_id", "_fingerprint", "_params", "writes", "origin")

    def __init__(
        self,
        run_id: str,
        fingerprint: Fingerprint | tuple[str, str | None],
        params: dict[str, Any] | str,
        writes: tuple[VariableAccess, ...],
        origin: str,
    ) -> None:
        """``fingerprint``: a fingerprint, or as stored, ``(its JSON, its key)``;
        ``params``: a mapping, or its JSON."""
        self.run_id = run_id
        self._fingerprint = fingerprint
        self._params = params
        self.writes = writes
        self.origin = origin

    @property
    def fingerprint(self) -> Fingerprint:
        found = self._fingerprint
        if isinstance(found, tuple):
            found = self._fingerprint = _fingerprint_class().from_stored(*found)
        return found

    @property
    def params(self) -> dict[str, Any]:
        found = self._params
        if isinstance(found, str):
            found = self._params = json.loads(found)
        return found

    def __repr__(self) -> str:
        return f"Success(run_id={self.run_id!r}, origin={self.origin!r})"


@functools.cache
def _fingerprint_class() -> type[Fingerprint]:
    """:class:`~normandy_core.fingerprint.Fingerprint`, imported where a success is first
    parsed (not by reading runs), once: a reused step parses one per task."""
    from normandy_core.fingerprint import Fingerprint

    return Fingerprint


def run_record(row: sqlite3.Row, status: str, ended: float | None, reason: str | None) -> RunRecord:
    """A ``runs`` row, with its status, end and reason as they read now (see
    :class:`RunRecord`)."""
    from normandy_core.history._values import load_params

    return RunRecord(
        id=row["id"],
        status=status,
        started=row["started"],
        ended=ended,
        tags=json.loads(row["tags"]),
        flows=json.loads(row["flows"]),
        params=load_params(row["params"]),
        env=row["env"],
        executor=row["executor"],
        workers=row["workers"],
        version=row["version"],
        fingerprint=row["fingerprint"],
        plan=json.loads(row["plan"]),
        pid=row["pid"],
        host=row["host"],
        resumed_from=row["resumed_from"],
        reason=reason,
        log_problems=json.loads(row["log_problems"]) if row["log_problems"] else [],
        pruned=row["pruned"],
        part=json.loads(row["part"]) if row["part"] else [],
    )


TASK_COLUMNS = (
    "key, flow, step, task, process, params, status, tolerated, attempts, started, ended, "
    "pid, error_kind, error_type, error_message, traceback, variables, resumed, "
    "fingerprint, cached_from, reason"
)
"""The columns a :class:`TaskRecord` is made of, that every history has (not the
fingerprint's parts, the largest: a run's page read them for 2,000 tasks to drop them)."""
LATER_TASK_COLUMNS = ("import_duration", "waiting", "waited", "parent")
"""Columns of histories made since: read where the table has them."""


def task_records(rows: Sequence[sqlite3.Row]) -> list[TaskRecord]:
    """The records of ``tasks`` rows selected as :data:`TASK_COLUMNS` (and those of
    :data:`LATER_TASK_COLUMNS` the table has).

    Made from each row's values in order, straight into the record's attributes: a
    run's page reads 2,000 tasks, and looking up 25 columns by name and setting 25
    fields of a frozen dataclass one by one took 24 µs a task."""
    if not rows:
        return []
    names = rows[0].keys()
    params, variables, tolerated, resumed = (names.index(n) for n in _DECODED)
    waited = names.index("waited") if "waited" in names else -1
    imported = names.index("import_duration") if "import_duration" in names else -1
    made = object.__new__
    records = []
    for row in rows:
        values = list(row)
        values[params] = _loads(values[params])
        values[variables] = _loads(values[variables]) if values[variables] else []
        values[tolerated] = bool(values[tolerated])
        values[resumed] = bool(values[resumed])
        if waited >= 0:
            values[waited] = float(values[waited] or 0.0)
        if imported >= 0:
            values[imported] = float(values[imported] or 0.0)
        record = made(TaskRecord)
        record.__dict__.update(zip(names, values))  # the fields a table lacks: defaults
        records.append(record)
    return records


_DECODED = ("params", "variables", "tolerated", "resumed")


def _loads(text: str) -> Any:
    """JSON text's value, as the history wrote it (no space around it): decoded by one
    decoder made once (``json.loads``' layers above it were most of its 10 µs a task);
    the empty mapping and list, most tasks' params and writes, without it."""
    if text == "{}":
        return {}
    if text == "[]":
        return []
    try:
        value, end = _decode(text)
    except ValueError:
        return json.loads(text)  # its error says what is wrong, and where
    return value if end == len(text) else json.loads(text)


_decode = json.JSONDecoder().raw_decode


ATTEMPT_COLUMNS = (
    "key, attempt, status, started, ended, pid, error_kind, error_type, error_message, "
    "fingerprint"
)
"""The columns an :class:`AttemptRecord` is made of (with ``import_duration`` where the
table has it)."""


def attempt_records(rows: Sequence[sqlite3.Row]) -> list[tuple[str, AttemptRecord]]:
    """``(task key, record)`` of ``attempts`` rows selected as :data:`ATTEMPT_COLUMNS`
    (and ``import_duration`` where the table has it), made as :func:`task_records`
    makes tasks."""
    if not rows:
        return []
    names = rows[0].keys()[1:]  # the key first, then the record's fields
    imported = names.index("import_duration") if "import_duration" in names else -1
    made = object.__new__
    out = []
    for row in rows:
        key, *values = row
        if imported >= 0:
            values[imported] = float(values[imported] or 0.0)
        record = made(AttemptRecord)
        record.__dict__.update(zip(names, values))
        out.append((key, record))
    return out

