"""The history database's schema, and the migrations that bring an older one up to date.

The schema's version is SQLite's ``PRAGMA user_version``. Version 1 is the schema of the
first releases, which did not set it (a database with the tables and ``user_version``
0 is a version 1 database). A new database is made by running every migration from
nothing, so the path that upgrades a user's database is the one every test takes.

A migration adds (columns with defaults, new tables) or scrubs: old rows stay readable,
and a database upgraded in place reads back every run it held. Version 4 scrubs the
fingerprints of version 3, which held unkeyed hashes of params' values, of the env's
settings and of its credentials (a short credential could be found by trying every value):
only their code is kept, and such a fingerprint reads as recorded before traces (the task
runs once more, and records one that can be verified).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from normandy_core._interrupt import deferred_signals

_V1 = """
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

_V2 = """
-- why a run ended early (an error of Normandy or of the machine), its last sign of life,
-- and the log files it could not write
ALTER TABLE runs ADD COLUMN reason TEXT;
ALTER TABLE runs ADD COLUMN heartbeat REAL;
ALTER TABLE runs ADD COLUMN log_problems TEXT;
CREATE INDEX IF NOT EXISTS runs_resumed_from ON runs (resumed_from);
-- reuse (SPEC 13): each attempt's fingerprint and its parts; a task served from the cache
ALTER TABLE attempts ADD COLUMN fingerprint TEXT;
ALTER TABLE attempts ADD COLUMN fingerprint_parts TEXT;
ALTER TABLE tasks ADD COLUMN fingerprint TEXT;
ALTER TABLE tasks ADD COLUMN fingerprint_parts TEXT;
ALTER TABLE tasks ADD COLUMN cached_from TEXT;
-- why it ran (or was reused): --explain's words, kept for whoever asks later
ALTER TABLE tasks ADD COLUMN reason TEXT;
CREATE INDEX IF NOT EXISTS tasks_by_key ON tasks (key, status);
-- honest durations: the seconds an attempt's worker spent importing its process's module
-- before its work began (its started), and their sum for the task
ALTER TABLE attempts ADD COLUMN import_duration REAL NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN import_duration REAL NOT NULL DEFAULT 0;
-- retention: a pruned run keeps its rows; its variables and logs are gone
ALTER TABLE runs ADD COLUMN pruned REAL;
-- the runs whose stored variables a run uses (reused, resumed, a partial run's inputs):
-- never pruned while it is kept
CREATE TABLE IF NOT EXISTS uses (
    run_id TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (run_id, source)
);
-- lineage (SPEC 12): what each attempt read and wrote
CREATE TABLE IF NOT EXISTS lineage (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('read', 'write')),
    flow TEXT NOT NULL,
    name TEXT NOT NULL,
    hash TEXT,
    size INTEGER,
    type TEXT,
    PRIMARY KEY (run_id, key, attempt, direction, name)
);
CREATE INDEX IF NOT EXISTS lineage_written ON lineage (flow, name, direction);
"""


_V3 = """
-- a partial run's --from/--to/--only patterns (JSON), shown with its selection and resumed
ALTER TABLE runs ADD COLUMN part TEXT;
"""


def _script(sql: str) -> Callable[[sqlite3.Connection], None]:
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))

    def migrate(db: sqlite3.Connection) -> None:
        for statement in code.split(";"):
            if statement.strip():
                db.execute(statement)

    return migrate


def _scrub(db: sqlite3.Connection) -> None:
    """Version 3 to 4: keep of each fingerprint only its code (see the module)."""
    import json

    import xxhash

    for table in ("tasks", "attempts"):
        rows = db.execute(
            f"SELECT rowid, fingerprint_parts FROM {table} WHERE fingerprint_parts IS NOT NULL"
        ).fetchall()
        for rowid, text in rows:
            try:
                code = json.loads(text).get("code")
            except (ValueError, AttributeError):
                code = None
            parts = json.dumps({"format": 1, "code": code} if code else {"format": 1})
            key = xxhash.xxh3_128_hexdigest(parts.encode())
            db.execute(
                f"UPDATE {table} SET fingerprint = ?, fingerprint_parts = ? WHERE rowid = ?",
                (key, parts if code else None, rowid),
            )


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _script(_V1),
    _script(_V2),
    _script(_V3),
    _scrub,
)
"""``MIGRATIONS[n]`` turns a version ``n`` database into version ``n + 1``."""

VERSION = len(MIGRATIONS)
"""The schema version this Normandy writes."""


def stored_version(db: sqlite3.Connection) -> int:
    """The schema version of ``db``: 0 for an empty database."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if (
        version == 0
        and db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'"
        ).fetchone()
    ):
        return 1  # written by a release that did not set user_version
    return version


def migrate(db: sqlite3.Connection) -> int:
    """Bring ``db`` (a connection in autocommit mode) to :data:`VERSION` in one transaction
    (all the migrations it needs, or none); return the version found. Two processes opening
    an old database at once migrate it once: the version is read again under the lock."""
    found = stored_version(db)
    if found >= VERSION:
        return found
    with transaction(db):
        current = stored_version(db)
        for step in MIGRATIONS[current:]:
            step(db)
        db.execute(f"PRAGMA user_version = {VERSION}")
    return found


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """The history's one way to write: the block's statements in one ``BEGIN IMMEDIATE``
    … ``COMMIT`` (rolled back if it raises, or if the commit fails). A Ctrl-C or SIGTERM
    arriving inside waits until it is committed or rolled back (see
    :func:`~normandy_core._interrupt.deferred_signals`): an interrupt never leaves a
    transaction open, which made every later write fail ("cannot start a transaction
    within a transaction")."""
    with deferred_signals():
        if db.in_transaction:  # never expected: whatever left it, it is not ours to keep
            db.execute("ROLLBACK")
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
