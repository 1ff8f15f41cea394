"""The run history: a SQLite database under ``<project>/.normandy/history.sqlite``.

Written as a run goes (one short transaction per event, WAL journal, safe under
concurrent runs of one project), so that a killed orchestrator leaves a truthful record:
a run still marked ``running`` whose orchestrator is gone is read back as
``interrupted``. Credentials are never written here; error messages come masked from the
workers.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from normandy_core.errors import NormandyError, display_path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    tags TEXT NOT NULL,
    flows TEXT NOT NULL,
    params TEXT NOT NULL,
    env TEXT NOT NULL,
    executor TEXT NOT NULL,
    workers INTEGER NOT NULL,
    version TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    plan TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_started TEXT,
    host TEXT NOT NULL,
    resumed_from TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    run_id TEXT NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    flow TEXT NOT NULL,
    step TEXT NOT NULL,
    task TEXT NOT NULL,
    process TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    tolerated INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    started REAL,
    ended REAL,
    pid INTEGER,
    error_kind TEXT,
    error_type TEXT,
    error_message TEXT,
    traceback TEXT,
    variables TEXT,
    resumed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    started REAL,
    ended REAL,
    pid INTEGER,
    error_kind TEXT,
    error_type TEXT,
    error_message TEXT,
    PRIMARY KEY (run_id, key, attempt)
);
"""

HISTORY_FILE = "history.sqlite"


class HistoryError(NormandyError):
    """The history database cannot be read or written."""


class RunNotFoundError(NormandyError):
    """``normandy runs RUN_ID`` or ``--resume RUN_ID`` names no recorded run."""


@dataclass(frozen=True)
class RunRecord:
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

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started

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
        return "; ".join(parts)


@dataclass(frozen=True)
class TaskRecord:
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
    resumed: bool

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started


class History:
    """The history database of one project."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / HISTORY_FILE
        self._pending: list[Callable[[sqlite3.Connection], Any]] | None = None
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA busy_timeout = 30000")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise HistoryError(
                f"cannot open the run history {display_path(self.path)}: {exc}; move the file "
                "away (a new history starts empty) or restore it from a backup"
            ) from None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Keep the events recorded inside the block, and write them in one transaction
        at each :meth:`flush` and at its end (nested batches join the outer one).

        The orchestrator runs in a batch and flushes before it waits for tasks: one commit
        per wake-up instead of one per event, and no write lock held while hooks run."""
        if self._pending is not None:
            yield
            return
        self._pending = []
        try:
            yield
        finally:
            self.flush()
            self._pending = None

    def flush(self) -> None:
        """Write the events kept by :meth:`batch` so far, in one transaction."""
        pending = self._pending
        if not pending:
            return
        self._pending = None  # _tx writes for real
        try:
            with self._tx() as db:
                for statement in pending:
                    statement(db)
        finally:
            self._pending = []

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self._pending is not None:  # inside batch(): recorded now, written at its end
            recorder = _Recorder()
            yield recorder  # type: ignore[misc]
            self._pending.extend(recorder.statements)
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- writing, as the run goes ---------------------------------------------------------------

    def start_run(self, run: dict[str, Any], tasks: Iterable[dict[str, Any]]) -> None:
        """Record a new run (``running``) and all its tasks (``pending``), in one transaction."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (id, status, started, tags, flows, params, env, executor, "
                "workers, version, fingerprint, plan, pid, pid_started, host, resumed_from) VALUES "
                "(?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run["id"],
                    run["started"],
                    json.dumps(run["tags"]),
                    json.dumps(run["flows"]),
                    _yaml_dump(run["params"]),
                    run["env"],
                    run["executor"],
                    run["workers"],
                    run["version"],
                    run["fingerprint"],
                    _json(run["plan"]),
                    os.getpid(),
                    _process_started(os.getpid()),
                    socket.gethostname(),
                    run.get("resumed_from"),
                ),
            )
            db.executemany(
                "INSERT INTO tasks (run_id, seq, key, flow, step, task, process, params, "
                "status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                [
                    (
                        run["id"],
                        i,
                        t["key"],
                        t["flow"],
                        t["step"],
                        t["task"],
                        t["process"],
                        _json(t["params"]),
                    )
                    for i, t in enumerate(tasks)
                ],
            )

    def attempt_started(self, run_id: str, key: str, attempt: int, when: float) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE tasks SET status = 'running', attempts = ?, "
                "started = COALESCE(started, ?) WHERE run_id = ? AND key = ?",
                (attempt, when, run_id, key),
            )
            db.execute(
                "INSERT OR REPLACE INTO attempts (run_id, key, attempt, status, started) "
                "VALUES (?, ?, ?, 'running', ?)",
                (run_id, key, attempt, when),
            )

    def attempt_ended(
        self,
        run_id: str,
        key: str,
        attempt: int,
        status: str,
        started: float | None,
        ended: float,
        pid: int | None,
        error: Any = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE attempts SET status = ?, started = COALESCE(?, started), ended = ?, "
                "pid = ?, error_kind = ?, error_type = ?, error_message = ? "
                "WHERE run_id = ? AND key = ? AND attempt = ?",
                (status, started, ended, pid, *_error(error), run_id, key, attempt),
            )

    def task_ended(self, run_id: str, outcome: Any, variables: Iterable[str] = ()) -> None:
        """Record a task's final state (``outcome`` is an execution ``Outcome``)."""
        error = outcome.error
        with self._tx() as db:
            db.execute(
                "UPDATE tasks SET status = ?, tolerated = ?, attempts = ?, started = ?, "
                "ended = ?, pid = ?, error_kind = ?, error_type = ?, error_message = ?, "
                "traceback = ?, variables = ?, resumed = ? WHERE run_id = ? AND key = ?",
                (
                    outcome.status,
                    int(outcome.tolerated),
                    outcome.attempts,
                    outcome.started,
                    outcome.ended,
                    outcome.pid,
                    *_error(error),
                    error.traceback if error is not None else None,
                    json.dumps(sorted(variables)),
                    int(getattr(outcome, "resumed", False)),
                    run_id,
                    outcome.task.key,
                ),
            )

    def end_run(self, run_id: str, status: str, ended: float | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status = ?, ended = ? WHERE id = ?",
                (status, ended or time.time(), run_id),
            )
            db.execute(
                "UPDATE tasks SET status = 'interrupted' WHERE run_id = ? AND status = 'running'",
                (run_id,),
            )
            db.execute(
                "UPDATE tasks SET status = 'not started' WHERE run_id = ? AND status = 'pending'",
                (run_id,),
            )
            db.execute(
                "UPDATE attempts SET status = 'interrupted' WHERE run_id = ? "
                "AND status = 'running'",
                (run_id,),
            )

    # -- reading -------------------------------------------------------------------------------

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent runs, newest first."""
        self._settle_dead_runs()
        rows = self.db.execute(
            "SELECT * FROM runs ORDER BY started DESC, id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [self._run(row) for row in rows]

    def get(self, run_id: str) -> RunRecord:
        """The run ``run_id`` (``last``: the most recent)."""
        self._settle_dead_runs()
        if run_id == "last":
            row = self.db.execute("SELECT * FROM runs ORDER BY started DESC, id DESC LIMIT 1")
        else:
            row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,))
        found = row.fetchone()
        if found is None:
            recent = ", ".join(r.id for r in self.runs(5)) or "none yet"
            what = "no run is recorded" if run_id == "last" else f"no run {run_id!r} is recorded"
            raise RunNotFoundError(
                f"{what} in {self.path}; recent runs: {recent} (see `normandy runs`)"
            )
        return self._run(found)

    def tasks(self, run_id: str) -> list[TaskRecord]:
        rows = self.db.execute(
            "SELECT key, flow, step, task, process, params, status, tolerated, attempts, "
            "started, ended, pid, error_kind, error_type, error_message, traceback, variables, "
            "resumed FROM tasks WHERE run_id = ? ORDER BY seq",
            (run_id,),
        ).fetchall()
        return [
            TaskRecord(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                json.loads(r[5]),
                r[6],
                bool(r[7]),
                r[8],
                r[9],
                r[10],
                r[11],
                r[12],
                r[13],
                r[14],
                r[15],
                json.loads(r[16]) if r[16] else [],
                bool(r[17]),
            )
            for r in rows
        ]

    def attempts(self, run_id: str, key: str) -> list[dict[str, Any]]:
        cursor = self.db.execute(
            "SELECT attempt, status, started, ended, pid, error_kind, error_type, error_message "
            "FROM attempts WHERE run_id = ? AND key = ? ORDER BY attempt",
            (run_id, key),
        )
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def run_attempts(self, run_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every attempt of the run, by task key, in order (see :meth:`attempts`)."""
        cursor = self.db.execute(
            "SELECT key, attempt, status, started, ended, pid, error_kind, error_type, "
            "error_message FROM attempts WHERE run_id = ? ORDER BY key, attempt",
            (run_id,),
        )
        names = [c[0] for c in cursor.description][1:]
        out: dict[str, list[dict[str, Any]]] = {}
        for row in cursor.fetchall():
            out.setdefault(row[0], []).append(dict(zip(names, row[1:])))
        return out

    def _settle_dead_runs(self) -> None:
        """A run still ``running`` whose orchestrator (on this host) is gone was killed:
        record it as ``interrupted``, with its running tasks."""
        host = socket.gethostname()
        rows = self.db.execute(
            "SELECT id, pid, pid_started, host FROM runs WHERE status = 'running'"
        ).fetchall()
        for run_id, pid, pid_started, run_host in rows:
            if run_host == host and not _alive(pid, pid_started):
                self.end_run(run_id, "interrupted", self._last_event(run_id))

    def _last_event(self, run_id: str) -> float:
        row = self.db.execute(
            "SELECT MAX(COALESCE(ended, started)) FROM tasks WHERE run_id = ?", (run_id,)
        ).fetchone()
        started = self.db.execute("SELECT started FROM runs WHERE id = ?", (run_id,)).fetchone()
        return float(row[0] or started[0])

    @staticmethod
    def _run(row: tuple[Any, ...]) -> RunRecord:
        return RunRecord(
            id=row[0],
            status=row[1],
            started=row[2],
            ended=row[3],
            tags=json.loads(row[4]),
            flows=json.loads(row[5]),
            params=_yaml_load(row[6]),
            env=row[7],
            executor=row[8],
            workers=row[9],
            version=row[10],
            fingerprint=row[11],
            plan=json.loads(row[12]),
            pid=row[13],
            host=row[15],
            resumed_from=row[16],
        )


def _alive(pid: int, started: str | None = None) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs (a pid can be
    reused by another process: its start time tells them apart)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started is None or _process_started(pid) in (None, started)


def _process_started(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), else ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22: starttime


def _error(error: Any) -> tuple[Any, Any, Any]:
    if error is None:
        return None, None, None
    return error.kind, error.type, error.message


def _yaml_dump(value: Any) -> str:
    """Params as YAML: dates and the other YAML scalars come back as they were."""
    import io

    from ruamel.yaml import YAML

    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(value, out)
    return out.getvalue()


def _yaml_load(text: str) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(text) or {}


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


class _Recorder:
    """Stands for the connection inside :meth:`History.batch`: keeps the statements."""

    def __init__(self) -> None:
        self.statements: list[Callable[[sqlite3.Connection], Any]] = []

    def execute(self, sql: str, params: Any = ()) -> None:
        self.statements.append(lambda db: db.execute(sql, params))

    def executemany(self, sql: str, rows: Any) -> None:
        rows = list(rows)
        self.statements.append(lambda db: db.executemany(sql, rows))
