"""What the history knows of datasets (SPEC 16): each attempt's dataset reads and writes
(:class:`DatasetRecord`), and the last write of each dataset (``normandy datasets``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from normandy_core.history._database import Database
from normandy_core.status import SUCCEEDED


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset an attempt of task ``key`` read or wrote (see
    :class:`~normandy_core.datasets._access.DatasetAccess`), in run ``run_id``."""

    run_id: str
    key: str
    attempt: int
    flow: str
    name: str
    direction: str
    type: str | None = None
    location: str | None = None
    version: str | None = None
    size: int | None = None
    mtime: float | None = None
    etag: str | None = None
    hash: str | None = None
    ended: float | None = None
    """When the task ended (for the last writes)."""


_COLUMNS = "run_id, key, attempt, flow, name, direction, type, location, version, size, " \
    "mtime, etag, hash"


class DatasetLineage(Database):
    """The dataset side of :class:`~normandy_core.history.History`."""

    def dataset_lineage(
        self, run_id: str, key: str, attempt: int, flow: str, accesses: Iterable[object]
    ) -> None:
        """What an attempt read and wrote of datasets (``accesses``:
        :class:`~normandy_core.datasets._access.DatasetAccess` records)."""
        rows = [
            (
                run_id, key, attempt, flow, a.name, a.direction, a.type,  # type: ignore[attr-defined]
                a.location, a.version, a.size, a.mtime, a.etag, a.hash,  # type: ignore[attr-defined]
            )
            for a in accesses
        ]
        if rows:
            self._submit(
                [
                    (
                        f"INSERT OR REPLACE INTO dataset_lineage ({_COLUMNS}) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        rows,
                        True,
                    )
                ]
            )

    def dataset_accesses(self, run_id: str) -> dict[str, list[DatasetRecord]]:
        """What each task of a run read and wrote of datasets, by task key: the accesses
        of its last attempt that recorded any."""
        rows = self._read(
            f"SELECT {_COLUMNS} FROM dataset_lineage WHERE run_id = ? "
            "ORDER BY key, attempt, direction, name",
            (run_id,),
        )
        last: dict[str, int] = {}
        for row in rows:
            last[row["key"]] = max(last.get(row["key"], 0), row["attempt"])
        out: dict[str, list[DatasetRecord]] = {}
        for row in rows:
            if row["attempt"] == last[row["key"]]:
                out.setdefault(row["key"], []).append(DatasetRecord(**dict(row)))
        return out

    def dataset_writes(self, names: Sequence[str] | None = None) -> dict[str, list[DatasetRecord]]:
        """The writes of each dataset (of ``names``, else all) by attempts that
        succeeded, oldest first: which run and task, where, what it wrote."""
        rows = self._read(
            "SELECT d.run_id, d.key, d.attempt, d.flow, d.name, d.direction, d.type, "
            "d.location, d.version, d.size, d.mtime, d.etag, d.hash, a.ended "
            "FROM dataset_lineage d JOIN attempts a ON a.run_id = d.run_id AND "
            "a.key = d.key AND a.attempt = d.attempt "
            "WHERE d.direction = 'write' AND a.status = ? ORDER BY a.ended",
            (SUCCEEDED,),
        )
        wanted = set(names) if names is not None else None
        found: dict[str, list[DatasetRecord]] = {}
        for row in rows:
            if wanted is None or row["name"] in wanted:
                found.setdefault(row["name"], []).append(DatasetRecord(**dict(row)))
        return found
