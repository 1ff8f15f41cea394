"""What the history knows of the data (SPEC 12, 13): each attempt's reads and writes, the
successes a run may reuse, which runs use which runs' stored variables, pruned runs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from normandy_core.fingerprint import Fingerprint
from normandy_core.history._database import Database
from normandy_core.history._records import Success, VariableAccess
from normandy_core.status import CACHED, SUCCEEDED
from normandy_core.trace import IMPORTED


class Lineage(Database):
    """The data side of :class:`~normandy_core.history.History`."""

    def lineage(
        self, run_id: str, key: str, attempt: int, accesses: Sequence[VariableAccess]
    ) -> None:
        """What an attempt read and wrote (SPEC 12)."""
        rows = [
            (run_id, key, attempt, a.direction, a.flow, a.name, a.hash, a.size, a.type)
            for a in accesses
        ]
        self._submit(
            [
                (
                    "INSERT OR REPLACE INTO lineage (run_id, key, attempt, direction, flow, name, "
                    "hash, size, type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                    True,
                )
            ]
        )

    def uses(self, run_id: str, sources: Iterable[str]) -> None:
        """``run_id`` uses variables stored by the runs ``sources`` (it reused their
        tasks, or took a partial run's inputs from them): they are kept while it is."""
        rows = [(run_id, source) for source in sorted(set(sources)) if source != run_id]
        self._submit([("INSERT OR IGNORE INTO uses (run_id, source) VALUES (?, ?)", rows, True)])

    def claim(self, run_id: str, source: str) -> bool:
        """Record, in a transaction of its own (written at once, even inside a
        :meth:`batch`), that ``run_id`` uses variables stored by ``source`` — unless
        ``source`` is pruned: then ``False``, and ``run_id`` must not use them.

        With :meth:`prune_runs`, which marks runs pruned in a transaction before their
        files are deleted and keeps those a running run uses, this makes binding and
        ``gc`` safe against each other: whichever commits first, the other sees it."""

        def write() -> bool:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self.db.execute("SELECT pruned FROM runs WHERE id = ?", (source,)).fetchone()
                ok = row is not None and row["pruned"] is None
                if ok:
                    self.db.execute(
                        "INSERT OR IGNORE INTO uses (run_id, source) VALUES (?, ?)",
                        (run_id, source),
                    )
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
            return ok

        return bool(self._retrying(write))

    def accesses(self, run_id: str) -> dict[str, list[VariableAccess]]:
        """What each task of a run read and wrote, by task key: the accesses of its last
        attempt that recorded any."""
        rows = self._read(
            "SELECT * FROM lineage WHERE run_id = ? ORDER BY key, attempt, direction, name",
            (run_id,),
        )
        last: dict[str, int] = {}
        for row in rows:
            last[row["key"]] = max(last.get(row["key"], 0), row["attempt"])
        out: dict[str, list[VariableAccess]] = {}
        for row in rows:
            if row["attempt"] == last[row["key"]]:
                out.setdefault(row["key"], []).append(
                    VariableAccess(
                        row["flow"],
                        row["name"],
                        row["direction"],
                        row["hash"],
                        row["size"],
                        row["type"],
                    )
                )
        return out

    def last_writer(
        self, name: str, flow: str | None = None, *, pruned: bool = False
    ) -> str | None:
        """The latest run in which a task that succeeded wrote ``name`` (in ``flow``),
        among the runs not pruned (with ``pruned``, among every run)."""
        rows = self._read(
            "SELECT l.run_id FROM lineage l JOIN tasks t ON t.run_id = l.run_id AND "
            "t.key = l.key JOIN runs r ON r.id = l.run_id WHERE l.name = ? AND "
            "l.direction = 'write' AND t.status = ? AND l.attempt = t.attempts AND "
            "(? IS NULL OR l.flow = ?) AND (? OR r.pruned IS NULL) "
            "ORDER BY l.run_id DESC LIMIT 1",
            (name, SUCCEEDED, flow, flow, pruned),
        )
        if rows:
            return str(rows[0]["run_id"])
        for row in self._read(  # runs recorded before lineage
            "SELECT t.run_id, t.flow, t.variables FROM tasks t JOIN runs r ON r.id = t.run_id "
            "WHERE t.status = ? AND t.resumed = 0 AND t.variables LIKE ? AND "
            "(? OR r.pruned IS NULL) ORDER BY t.run_id DESC",
            (SUCCEEDED, f'%"{name}"%', pruned),
        ):
            if name in json.loads(row["variables"]) and flow in (None, row["flow"]):
                return str(row["run_id"])
        return None

    _known: dict[str, list[Success]] | None = None

    def close(self) -> None:
        self._known = None
        super().close()

    def successes(self, key: str, limit: int = 20) -> list[Success]:
        """The latest successes of the task ``key`` (run or reused) that recorded a
        fingerprint, newest first, in runs not pruned: what a run may reuse (SPEC 13).
        Read from :meth:`prefetch`'s answer where it asked for ``key``."""
        if self._known is not None and key in self._known:
            return self._known[key][:limit]
        return self.successes_of([key], limit)[key]

    def prefetch(self, keys: Iterable[str], limit: int = 20) -> None:
        """Read the successes of every task of ``keys`` now, in a few queries instead of two
        per task (a run of 2,000 reused tasks asked 4,000 times): :meth:`successes`
        answers from them until :meth:`close`."""
        self._known = {**(self._known or {}), **self.successes_of(keys, limit)}

    def successes_of(self, keys: Iterable[str], limit: int = 20) -> dict[str, list[Success]]:
        """:meth:`successes` of each of ``keys``, read together."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, list[Success]] = {key: [] for key in wanted}
        rows: list[Any] = []
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            marks = ",".join("?" * len(batch))
            rows += self._read(
                "SELECT t.key, t.run_id, t.params, t.attempts, t.fingerprint_parts, "
                "t.fingerprint, t.cached_from FROM tasks t JOIN runs r ON r.id = t.run_id "
                f"WHERE t.key IN ({marks}) AND t.status IN (?, ?) "
                "AND t.fingerprint_parts IS NOT NULL AND r.pruned IS NULL "
                "ORDER BY t.key, t.run_id DESC",
                (*batch, SUCCEEDED, CACHED),
            )
        kept: dict[str, list[Any]] = {}
        for row in rows:
            listed = kept.setdefault(row["key"], [])
            if len(listed) < limit:
                listed.append(row)
        writes = self._writes_of(
            [(r["run_id"], k, r["attempts"]) for k, v in kept.items() for r in v]
        )
        for key, listed in kept.items():
            found[key] = [
                Success(
                    run_id=row["run_id"],
                    fingerprint=(row["fingerprint_parts"], row["fingerprint"]),
                    params=row["params"],
                    writes=tuple(writes.get((row["run_id"], key, row["attempts"]), ())),
                    origin=row["cached_from"] or row["run_id"],
                )
                for row in listed
            ]
        return found

    def _writes_of(
        self, attempts: list[tuple[str, str, int]]
    ) -> dict[tuple[str, str, int], list[VariableAccess]]:
        """What each ``(run_id, key, attempt)`` wrote, by name."""
        out: dict[tuple[str, str, int], list[VariableAccess]] = {}
        wanted = set(attempts)
        runs = sorted({run_id for run_id, _, _ in attempts})
        keys = sorted({key for _, key, _ in attempts})
        for r in range(0, len(runs), 400):
            run_batch = runs[r : r + 400]
            for k in range(0, len(keys), 400):
                key_batch = keys[k : k + 400]
                rows = self._read(
                    "SELECT run_id, key, attempt, flow, name, hash, size, type FROM lineage "
                    f"WHERE run_id IN ({','.join('?' * len(run_batch))}) "
                    f"AND key IN ({','.join('?' * len(key_batch))}) "
                    "AND direction = 'write' ORDER BY name",
                    [*run_batch, *key_batch],
                )
                for w in rows:
                    where = (w["run_id"], w["key"], w["attempt"])
                    if where in wanted:
                        out.setdefault(where, []).append(
                            VariableAccess(
                                w["flow"], w["name"], "write", w["hash"], w["size"], w["type"]
                            )
                        )
        return out

    def fingerprints(self, run_id: str) -> dict[str, Fingerprint]:
        """The fingerprint each task of a run recorded (its last attempt's, or the success
        it reused), by task key: what ``normandy ui`` compares to tell why two runs
        differ."""
        rows = self._read(
            "SELECT key, fingerprint_parts FROM tasks WHERE run_id = ? AND "
            "fingerprint_parts IS NOT NULL",
            (run_id,),
        )
        return {
            row["key"]: Fingerprint.from_dict(json.loads(row["fingerprint_parts"]))
            for row in rows
        }

    def sources(self, run_ids: Iterable[str]) -> set[str]:
        """Every run whose stored variables the runs ``run_ids`` use, directly or not."""
        found: set[str] = set()
        todo = list(run_ids)
        while todo:
            batch, todo = todo[:500], todo[500:]
            marks = ",".join("?" * len(batch))
            rows = self._read(f"SELECT source FROM uses WHERE run_id IN ({marks})", batch)
            new = {r["source"] for r in rows} - found
            found |= new
            todo += list(new)
        return found

    def prune(self, run_ids: Iterable[str], when: float) -> None:
        """Mark runs pruned: their rows stay, their variables and logs are gone."""
        rows = [(when, run_id) for run_id in run_ids]
        self._submit([("UPDATE runs SET pruned = ? WHERE id = ?", rows, True)])

    def imported_modules(self, keys: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The modules each task (by key) imported while it ran, the last time it
        succeeded (and ran), as its trace noted them: for a fork server to import them
        before the task runs next time."""
        wanted = sorted(set(keys))
        found: dict[str, tuple[str, ...]] = {}
        for i in range(0, len(wanted), 500):
            batch = wanted[i : i + 500]
            marks = ",".join("?" * len(batch))
            # the newest success of each key only, and of it only the list: every run's
            # whole fingerprints were read (a history of 20 runs of 1,000 tasks: 20,000)
            rows = self._read(
                "SELECT key, json_extract(fingerprint_parts, ?) AS imported FROM ("
                " SELECT key, fingerprint_parts, ROW_NUMBER() OVER"
                "  (PARTITION BY key ORDER BY run_id DESC) AS newest"
                f" FROM tasks WHERE key IN ({marks}) AND status = ?"
                " AND fingerprint_parts IS NOT NULL"
                ") WHERE newest = 1",
                (f"$.trace.notes.{IMPORTED}", *batch, SUCCEEDED),
            )
            for row in rows:
                listed = json.loads(row["imported"]) if row["imported"] else []
                found[row["key"]] = tuple(listed) if isinstance(listed, list) else ()
        return found
