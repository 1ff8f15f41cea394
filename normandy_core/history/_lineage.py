"""What the history knows of the data (SPEC 12, 13): each attempt's reads and writes, the
successes a run may reuse, which runs use which runs' stored variables, pruned runs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

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

    def last_writer(self, name: str, flow: str | None = None) -> str | None:
        """The latest run in which a task that succeeded wrote ``name`` (in ``flow``)."""
        rows = self._read(
            "SELECT l.run_id FROM lineage l JOIN tasks t ON t.run_id = l.run_id AND "
            "t.key = l.key WHERE l.name = ? AND l.direction = 'write' AND t.status = ? AND "
            "l.attempt = t.attempts AND (? IS NULL OR l.flow = ?) "
            "ORDER BY l.run_id DESC LIMIT 1",
            (name, SUCCEEDED, flow, flow),
        )
        if rows:
            return str(rows[0]["run_id"])
        for row in self._read(  # runs recorded before lineage
            "SELECT run_id, flow, variables FROM tasks WHERE status = ? AND resumed = 0 AND "
            "variables LIKE ? ORDER BY run_id DESC",
            (SUCCEEDED, f'%"{name}"%'),
        ):
            if name in json.loads(row["variables"]) and flow in (None, row["flow"]):
                return str(row["run_id"])
        return None

    def successes(self, key: str, limit: int = 20) -> list[Success]:
        """The latest successes of the task ``key`` (run or reused) that recorded a
        fingerprint, newest first, in runs not pruned: what a run may reuse (SPEC 13)."""
        rows = self._read(
            "SELECT t.run_id, t.params, t.attempts, t.fingerprint_parts, t.cached_from "
            "FROM tasks t JOIN runs r ON r.id = t.run_id "
            "WHERE t.key = ? AND t.status IN (?, ?) AND t.fingerprint_parts IS NOT NULL "
            "AND r.pruned IS NULL ORDER BY t.run_id DESC LIMIT ?",
            (key, SUCCEEDED, CACHED, limit),
        )
        found = []
        for row in rows:
            writes = self._read(
                "SELECT flow, name, hash, size, type FROM lineage WHERE run_id = ? AND "
                "key = ? AND attempt = ? AND direction = 'write' ORDER BY name",
                (row["run_id"], key, row["attempts"]),
            )
            found.append(
                Success(
                    run_id=row["run_id"],
                    fingerprint=Fingerprint.from_dict(json.loads(row["fingerprint_parts"])),
                    params=json.loads(row["params"]),
                    writes=tuple(
                        VariableAccess(
                            w["flow"], w["name"], "write", w["hash"], w["size"], w["type"]
                        )
                        for w in writes
                    ),
                    origin=row["cached_from"] or row["run_id"],
                )
            )
        return found

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
            rows = self._read(
                "SELECT key, fingerprint_parts FROM tasks WHERE key IN "
                f"({marks}) AND status = ? AND fingerprint_parts IS NOT NULL "
                "ORDER BY run_id DESC",
                (*batch, SUCCEEDED),
            )
            for row in rows:
                if row["key"] not in found:
                    parts = json.loads(row["fingerprint_parts"])
                    notes = (parts.get("trace") or {}).get("notes") or {}
                    found[row["key"]] = tuple(notes.get(IMPORTED, ()))
        return found
