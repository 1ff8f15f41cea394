"""The :class:`History` of one project: writing a run as it goes, reading runs back."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from normandy_core.errors import ResumeError, RunNotFoundError, display_path
from normandy_core.fingerprint import Fingerprint
from normandy_core.history._database import Statement, alive, process_started
from normandy_core.history._datasets import DatasetLineage
from normandy_core.history._lineage import Lineage
from normandy_core.history._records import (
    ATTEMPT_COLUMNS,
    LATER_TASK_COLUMNS,
    TASK_COLUMNS,
    AttemptRecord,
    AttemptTotals,
    RunIndex,
    RunRecord,
    RunStart,
    RunState,
    TaskRecord,
    TaskStart,
    Written,
    attempt_records,
    run_record,
    task_records,
)
from normandy_core.history._schema import transaction
from normandy_core.history._values import dump_json, dump_params
from normandy_core.status import (
    CACHED,
    INTERRUPTED,
    NOT_STARTED,
    RUNNING,
    SUCCEEDED,
    tally,
)

if TYPE_CHECKING:
    from normandy_core.outcomes import Outcome, TaskError

_STATE = "id, status, started, pruned, host, pid, pid_started"
"""The columns of a :class:`RunState` (and what :meth:`History._dead` reads)."""

Choose = Callable[[list[RunState], Callable[[Iterable[str]], set[str]]], list[str]]
"""``(runs, sources) -> the ids of the runs to prune``."""


class History(Lineage, DatasetLineage):
    """The history database of one project (``<state_dir>/history.sqlite``).

    Written as a run goes, in short transactions (WAL journal: safe under concurrent runs
    of one project), so a killed orchestrator leaves a truthful record. Reading never
    writes: a run whose process is gone without ending it *reads* as interrupted, and is
    recorded so by the next run that starts. Credentials are never written here.
    """

    # -- writing, as a run goes -------------------------------------------------------------

    def start_run(self, run: RunStart, tasks: Iterable[TaskStart]) -> None:
        """Record a new run (``running``) and its tasks (``pending``), in one transaction,
        after recording as interrupted the runs of this host whose process is gone.

        A run that resumes another (``run.resumed_from``) claims it in that transaction:
        :class:`ResumeError` if a live run already resumes it."""
        rows = [
            (run.id, i, t.key, t.flow, t.step, t.task, t.process, dump_json(dict(t.params)))
            for i, t in enumerate(tasks)
        ]

        def write() -> None:
            with transaction(self.db):
                self._settle(self._dead_runs())
                if run.resumed_from is not None:
                    self._claim(run.resumed_from)
                self.db.execute(
                    "INSERT INTO runs (id, status, started, heartbeat, tags, flows, params, env, "
                    "executor, workers, version, fingerprint, plan, pid, pid_started, host, "
                    "resumed_from, part) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "?, ?)",
                    (
                        run.id,
                        RUNNING,
                        run.started,
                        run.started,
                        json.dumps(list(run.tags)),
                        json.dumps(list(run.flows)),
                        dump_params(dict(run.params)),
                        run.env,
                        run.executor,
                        run.workers,
                        run.version,
                        run.fingerprint,
                        dump_json(run.plan),
                        os.getpid(),
                        process_started(os.getpid()),
                        self._host,
                        run.resumed_from,
                        json.dumps([list(p) for p in run.part]) if run.part else None,
                    ),
                )
                self.db.executemany(
                    "INSERT INTO tasks (run_id, seq, key, flow, step, task, process, params, "
                    "status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                    rows,
                )

        self._retrying(write)

    def _claim(self, resumed: str) -> None:
        for row in self.db.execute(
            "SELECT id, pid, host FROM runs WHERE resumed_from = ? AND status = ?",
            (resumed, RUNNING),
        ).fetchall():
            raise ResumeError(
                f"run {resumed} is already being resumed by run {row['id']} (pid {row['pid']} "
                f"on {row['host']}); wait for it to end, then see `normandy runs`"
            )

    def tasks_added(
        self, run_id: str, parent: str, tasks: Sequence[TaskStart], when: float
    ) -> None:
        """The mapped task ``parent`` fanned out into ``tasks`` (``pending``, listed after
        it); it runs from ``when``."""
        rows = [
            (run_id, t.key, t.flow, t.step, t.task, t.process, dump_json(dict(t.params)), parent)
            for t in tasks
        ]
        self._submit(
            [
                (
                    "UPDATE tasks SET status = ?, started = ? WHERE run_id = ? AND key = ?",
                    (RUNNING, when, run_id, parent),
                    False,
                ),
                (
                    "INSERT INTO tasks (run_id, seq, key, flow, step, task, process, params, "
                    "status, parent) SELECT ?, seq, ?, ?, ?, ?, ?, ?, 'pending', ? FROM tasks "
                    "WHERE run_id = ?1 AND key = ?8",
                    rows,
                    True,
                ),
            ]
        )

    def task_waiting(self, run_id: str, key: str, pool: str) -> None:
        """The task waits for units of ``pool``."""
        self._submit(
            [
                (
                    "UPDATE tasks SET waiting = ? WHERE run_id = ? AND key = ?",
                    (pool, run_id, key),
                    False,
                )
            ]
        )

    def forget_run(self, run_id: str) -> None:
        """Delete a run that never started a task (its engine could not start)."""
        self._submit(
            [
                ("DELETE FROM tasks WHERE run_id = ?", (run_id,), False),
                ("DELETE FROM runs WHERE id = ?", (run_id,), False),
            ]
        )

    def attempt_started(self, run_id: str, key: str, attempt: int, when: float) -> None:
        self._submit(
            [
                (
                    "UPDATE tasks SET status = ?, attempts = ?, started = COALESCE(started, ?), "
                    "waiting = NULL WHERE run_id = ? AND key = ?",
                    (RUNNING, attempt, when, run_id, key),
                    False,
                ),
                (
                    "INSERT OR REPLACE INTO attempts (run_id, key, attempt, status, started) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (run_id, key, attempt, RUNNING, when),
                    False,
                ),
            ]
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
        error: TaskError | None = None,
        fingerprint: Fingerprint | None = None,
        import_duration: float = 0.0,
    ) -> None:
        self._submit(
            [
                (
                    "UPDATE attempts SET status = ?, started = COALESCE(?, started), ended = ?, "
                    "pid = ?, error_kind = ?, error_type = ?, error_message = ?, "
                    "fingerprint = ?, fingerprint_parts = ?, import_duration = ? "
                    "WHERE run_id = ? AND key = ? AND attempt = ?",
                    (
                        status,
                        started,
                        ended,
                        pid,
                        *_error(error),
                        *_fingerprint(fingerprint),
                        import_duration,
                        run_id,
                        key,
                        attempt,
                    ),
                    False,
                )
            ]
        )

    def task_ended(self, run_id: str, outcome: Outcome) -> None:
        """Record a task's final state."""
        error = outcome.error
        self._submit(
            [
                (
                    "UPDATE tasks SET status = ?, tolerated = ?, attempts = ?, started = ?, "
                    "ended = ?, pid = ?, error_kind = ?, error_type = ?, error_message = ?, "
                    "traceback = ?, variables = ?, resumed = ?, fingerprint = ?, "
                    "fingerprint_parts = ?, cached_from = ?, reason = ?, import_duration = ?, "
                    "waited = ?, waiting = NULL WHERE run_id = ? AND key = ?",
                    (
                        outcome.status,
                        int(outcome.tolerated),
                        outcome.attempts,
                        outcome.started,
                        outcome.ended,
                        outcome.pid,
                        *_error(error),
                        error.traceback if error is not None else None,
                        json.dumps(sorted(outcome.variables)),
                        int(outcome.resumed),
                        *_fingerprint(outcome.fingerprint),
                        outcome.cached_from,
                        outcome.reason,
                        outcome.import_duration,
                        outcome.waited,
                        run_id,
                        outcome.task.key,
                    ),
                    False,
                )
            ]
        )

    def heartbeat(self, run_id: str, when: float) -> None:
        """The run is alive at ``when``: a killed run's duration ends at its last one."""
        self._submit([("UPDATE runs SET heartbeat = ? WHERE id = ?", (when, run_id), False)])

    def end_run(
        self,
        run_id: str,
        status: str,
        *,
        reason: str | None = None,
        log_problems: Sequence[str] = (),
        ended: float | None = None,
    ) -> None:
        """Record how the run ended; its tasks still running are interrupted, those still
        pending did not start."""
        self._submit(_end_statements(run_id, status, reason, ended or time.time(), log_problems))

    def prune_runs(self, choose: Choose, when: float, *, dry_run: bool = False) -> list[str]:
        """Mark pruned, in one transaction, the runs ``choose(runs, sources)`` picks among
        the runs not pruned yet (newest first; ``sources(ids)``: the runs those use,
        followed); their ids. Their files are deleted after, by the caller: a run that
        claims one of them meanwhile (:meth:`claim`) is refused."""

        def write() -> list[str]:
            if not dry_run:
                self.db.execute("BEGIN IMMEDIATE")
            try:
                rows = self.db.execute(
                    f"SELECT {_STATE} FROM runs WHERE pruned IS NULL "
                    "ORDER BY started DESC, id DESC"
                ).fetchall()
                doomed = choose([self._state(row) for row in rows], self.sources)
                if not dry_run:
                    self.db.executemany(
                        "UPDATE runs SET pruned = ? WHERE id = ?", [(when, r) for r in doomed]
                    )
            except BaseException:
                if not dry_run:
                    self.db.execute("ROLLBACK")
                raise
            if not dry_run:
                self.db.execute("COMMIT")
            return doomed

        return list(self._retrying(write))

    # -- reading ----------------------------------------------------------------------------

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent runs, newest first."""
        rows = self._read("SELECT * FROM runs ORDER BY started DESC, id DESC LIMIT ?", (limit,))
        return [self._run(row) for row in rows]

    def states(self) -> list[RunState]:
        """Every recorded run, newest first, as pruning needs it (:class:`RunState`)."""
        rows = self._read(f"SELECT {_STATE} FROM runs ORDER BY started DESC, id DESC", ())
        return [self._state(row) for row in rows]

    def index(self, limit: int = 10_000) -> list[RunIndex]:
        """The most recent runs, newest first, as a list of many runs needs them: their
        plans are not read into Python (SQLite picks the flows and tags out of them)."""
        rows = self._read(
            "SELECT r.id, r.status, r.started, r.pruned, r.host, r.pid, r.pid_started, "
            "(SELECT group_concat(value, char(31)) FROM json_each(r.tags)) AS asked, "
            "(SELECT group_concat(json_extract(f.value, '$.name') || char(30) || "
            " coalesce((SELECT group_concat(value, char(30)) FROM json_each(f.value, '$.tags')),"
            " ''), char(31)) FROM json_each(r.plan) f) AS flows "
            "FROM runs r ORDER BY r.started DESC, r.id DESC LIMIT ?",
            (limit,),
        )
        out = []
        for row in rows:
            flows = [f.split("\x1e") for f in row["flows"].split("\x1f")] if row["flows"] else []
            out.append(
                RunIndex(
                    id=row["id"],
                    status=INTERRUPTED if self._dead(row) else row["status"],
                    started=row["started"],
                    tags=tuple(row["asked"].split("\x1f")) if row["asked"] else (),
                    flows=tuple(f[0] for f in flows),
                    flow_tags=tuple(dict.fromkeys(t for f in flows for t in f[1:] if t)),
                    pruned=row["pruned"],
                )
            )
        return out

    def tallies(self, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """How the tasks of each run ended, counted by category
        (:func:`normandy_core.status.tally`), in one query: for a list of many runs."""
        out: dict[str, list[tuple[str, bool, bool]]] = {run_id: [] for run_id in run_ids}
        for start in range(0, len(run_ids), 500):
            batch = list(run_ids[start : start + 500])
            marks = ",".join("?" * len(batch))
            rows = self._read(
                "SELECT run_id, status, tolerated, resumed, COUNT(*) AS n FROM tasks "
                f"WHERE run_id IN ({marks}) GROUP BY run_id, status, tolerated, resumed",
                batch,
            )
            for row in rows:
                status = row["status"]
                if status in (RUNNING, "pending") and self._is_dead(row["run_id"]):
                    status = INTERRUPTED if status == RUNNING else NOT_STARTED
                entry = (status, bool(row["tolerated"]), bool(row["resumed"]))
                out[row["run_id"]].extend([entry] * row["n"])
        return {run_id: tally(entries) for run_id, entries in out.items()}

    def get(self, run_id: str) -> RunRecord:
        """The run ``run_id`` (``last``: the most recent); :class:`RunNotFoundError`."""
        if run_id == "last":
            rows = self._read("SELECT * FROM runs ORDER BY started DESC, id DESC LIMIT 1")
        else:
            rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            recent = ", ".join(r.id for r in self.runs(5)) or "none yet"
            what = "no run is recorded" if run_id == "last" else f"no run {run_id!r} is recorded"
            raise RunNotFoundError(
                f"{what} in {display_path(self.path)}; recent runs: {recent} (see `normandy runs`)"
            )
        return self._run(rows[0])

    def tasks(self, run_id: str) -> list[TaskRecord]:
        """The tasks of a run, in plan order."""
        present = self._columns("tasks")
        columns = [TASK_COLUMNS, *(c for c in LATER_TASK_COLUMNS if c in present)]
        rows = self._read(
            f"SELECT {', '.join(columns)} FROM tasks WHERE run_id = ? ORDER BY seq, rowid",
            (run_id,),
        )
        dead = self._is_dead(run_id)
        records = task_records(rows)
        if dead:  # as end_run will record them
            records = [_as_ended(r) for r in records]
        return records

    def attempts(self, run_id: str, key: str) -> list[AttemptRecord]:
        """The attempts of one task, in order."""
        return self.run_attempts(run_id, key).get(key, [])

    def written(self, run_id: str) -> list[Written]:
        """The variables a run's succeeded tasks wrote (committed), and those its cached
        tasks bound from an earlier run (``cached_from``), as the lineage of their last
        attempt describes them (for a run recorded before lineage: their names only)."""
        rows = self._read(
            "SELECT l.flow, l.name, l.key, l.type, l.size, l.hash, t.cached_from FROM lineage l "
            "JOIN tasks t ON t.run_id = l.run_id AND t.key = l.key WHERE l.run_id = ? AND "
            "l.direction = 'write' AND t.status IN (?, ?) AND l.attempt = t.attempts "
            "ORDER BY l.flow, l.name",
            (run_id, SUCCEEDED, CACHED),
        )
        found = {
            (r["flow"], r["name"]): Written(
                r["flow"], r["name"], r["key"], r["type"], r["size"], r["cached_from"]
            )
            for r in rows
        }
        for task in self.tasks(run_id):
            if task.status == SUCCEEDED and not task.resumed:
                for name in task.variables:
                    found.setdefault((task.flow, name), Written(task.flow, name, task.key))
        return sorted(found.values(), key=lambda w: (w.flow, w.name))

    def attempt_totals(self, run_id: str) -> AttemptTotals:
        """The run's attempts counted in one query (:class:`AttemptTotals`)."""
        row = self._read(
            "SELECT COUNT(*), COUNT(DISTINCT key), COALESCE(SUM(ended - started), 0.0) "
            "FROM attempts WHERE run_id = ?",
            (run_id,),
        )[0]
        return AttemptTotals(row[0], row[1], float(row[2]))

    def task_count(self, run_id: str) -> int:
        """How many tasks the run has (a map's elements included)."""
        return int(self._read("SELECT COUNT(*) FROM tasks WHERE run_id = ?", (run_id,))[0][0])

    def run_attempts(self, run_id: str, key: str | None = None) -> dict[str, list[AttemptRecord]]:
        """Every attempt of the run (of the task ``key`` only, if given), by task key, in
        order."""
        later = ", import_duration" if "import_duration" in self._columns("attempts") else ""
        sql = f"SELECT {ATTEMPT_COLUMNS}{later} FROM attempts WHERE run_id = ?"
        sql += " AND key = ?" if key else ""
        rows = self._read(sql + " ORDER BY key, attempt", (run_id, key) if key else (run_id,))
        dead = bool(rows) and self._is_dead(run_id)
        out: dict[str, list[AttemptRecord]] = {}
        for task_key, record in attempt_records(rows):
            if dead and record.status == RUNNING:  # as end_run will record it
                record = replace(record, status=INTERRUPTED)
            out.setdefault(task_key, []).append(record)
        return out

    # -- runs whose process is gone ---------------------------------------------------------

    def _columns(self, table: str) -> frozenset[str]:
        """The columns ``table`` has in this database (older ones lack later columns)."""
        found = self._table_columns.get(table)
        if found is None:
            rows = self._read(f"PRAGMA table_info({table})")
            found = self._table_columns[table] = frozenset(row["name"] for row in rows)
        return found

    def _run(self, row: sqlite3.Row) -> RunRecord:
        if self._dead(row):
            return run_record(row, INTERRUPTED, self._last_sign(row), _killed(row["pid"]))
        return run_record(row, row["status"], row["ended"], row["reason"])

    def _state(self, row: sqlite3.Row) -> RunState:
        status = INTERRUPTED if self._dead(row) else row["status"]
        return RunState(row["id"], status, row["started"], row["pruned"])

    def _dead(self, row: sqlite3.Row) -> bool:
        """A run still ``running`` whose process (on this host) is gone."""
        return (
            row["status"] == RUNNING
            and row["host"] == self._host
            and not alive(row["pid"], row["pid_started"])
        )

    def _is_dead(self, run_id: str) -> bool:
        rows = self._read("SELECT status, host, pid, pid_started FROM runs WHERE id = ?", (run_id,))
        return bool(rows) and self._dead(rows[0])

    def _dead_runs(self) -> list[sqlite3.Row]:
        rows = self.db.execute("SELECT * FROM runs WHERE status = ?", (RUNNING,)).fetchall()
        return [row for row in rows if self._dead(row)]

    def _last_sign(self, row: sqlite3.Row) -> float:
        """The last time a dead run was seen alive: its heartbeat or its last event."""
        last = self.db.execute(
            "SELECT MAX(COALESCE(ended, started)) FROM tasks WHERE run_id = ?", (row["id"],)
        ).fetchone()[0]
        return float(max(x for x in (row["heartbeat"], last, row["started"]) if x is not None))

    def _settle(self, rows: list[sqlite3.Row]) -> None:
        """Record dead runs as interrupted (inside the caller's transaction)."""
        for row in rows:
            for sql, params, _ in _end_statements(
                row["id"], INTERRUPTED, _killed(row["pid"]), self._last_sign(row), ()
            ):
                self.db.execute(sql, params)


def _end_statements(
    run_id: str, status: str, reason: str | None, ended: float, log_problems: Sequence[str]
) -> list[Statement]:
    return [
        (
            "UPDATE runs SET status = ?, ended = ?, reason = ?, log_problems = ? WHERE id = ?",
            (
                status,
                ended,
                reason,
                json.dumps(list(log_problems)) if log_problems else None,
                run_id,
            ),
            False,
        ),
        (
            "UPDATE tasks SET status = ? WHERE run_id = ? AND status = ?",
            (INTERRUPTED, run_id, RUNNING),
            False,
        ),
        (
            "UPDATE tasks SET status = ?, waiting = NULL WHERE run_id = ? AND status = 'pending'",
            (NOT_STARTED, run_id),
            False,
        ),
        (
            "UPDATE attempts SET status = ? WHERE run_id = ? AND status = ?",
            (INTERRUPTED, run_id, RUNNING),
            False,
        ),
    ]


def _as_ended(record: TaskRecord) -> TaskRecord:
    if record.status == RUNNING:
        return replace(record, status=INTERRUPTED)
    if record.status == "pending":
        return replace(record, status=NOT_STARTED)
    return record


def _killed(pid: int) -> str:
    return (
        f"its normandy process (pid {pid}) ended without recording the run's end: it was "
        "killed, or its machine stopped"
    )


def _fingerprint(fingerprint: Fingerprint | None) -> tuple[str | None, str | None]:
    if fingerprint is None:
        return None, None
    return fingerprint.key, fingerprint.stored


def _error(error: TaskError | None) -> tuple[str | None, str | None, str | None]:
    if error is None:
        return None, None, None
    return error.kind, error.type, error.message
