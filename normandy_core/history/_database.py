"""The history's SQLite database: opening (and upgrading) it, transactions, kept writes,
and waiting for another program that holds it locked."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from normandy_core.errors import HistoryError, display_path
from normandy_core.history import _schema
from normandy_core.history._schema import transaction

HISTORY_FILE = "history.sqlite"
TIMEOUT_VARIABLE = "NORMANDY_HISTORY_TIMEOUT"
"""How many seconds to wait for a history locked by another program (default 30)."""

_TRIES = 2
Statement = tuple[str, Sequence[Any] | list[Sequence[Any]], bool]
"""``(sql, parameters, many)``: one write, kept until its transaction."""


class Database:
    """A connection to ``<state_dir>/history.sqlite`` (made, or upgraded, on opening)."""

    def __init__(self, state_dir: Path, *, timeout: float | None = None) -> None:
        self.path = state_dir / HISTORY_FILE
        self.timeout = _timeout() if timeout is None else timeout
        self._host = socket.gethostname()
        self._pending: list[Statement] | None = None
        self._warned = False
        self._table_columns: dict[str, frozenset[str]] = {}
        """Each table's columns in this database, as read once (older ones lack some)."""
        state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        self.db.row_factory = sqlite3.Row
        try:
            self._retrying(self._open)
        except BaseException:
            self.db.close()
            raise

    def _open(self) -> None:
        self.db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        if self.db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        found = _schema.stored_version(self.db)
        if found > _schema.VERSION:
            raise HistoryError(
                f"the run history {display_path(self.path)} was written by a newer Normandy "
                f"(schema {found}; this one reads up to {_schema.VERSION}): upgrade normandy"
            )
        _schema.migrate(self.db)

    def close(self) -> None:
        self.db.close()

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Keep the writes made inside the block and write them in one transaction at each
        :meth:`flush` and at its end (nested batches join the outer one).

        The orchestrator runs in a batch and flushes before it waits for tasks: one commit
        per wake-up instead of one per event, and no write lock held while hooks run."""
        if self._pending is not None:
            yield
            return
        self._pending = []
        try:
            yield
        finally:
            try:
                self.flush()
            finally:
                self._pending = None

    def flush(self) -> None:
        """Write the writes kept by :meth:`batch` so far, in one transaction. If the
        database stays locked, they are kept for the next flush and :class:`HistoryError`
        is raised."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        try:
            self._retrying(lambda: self._write(pending))
        except HistoryError:
            self._pending = pending + self._pending
            raise

    def _submit(self, statements: list[Statement]) -> None:
        if self._pending is not None:
            self._pending.extend(statements)
        else:
            self._retrying(lambda: self._write(statements))

    def _write(self, statements: Iterable[Statement]) -> None:
        with transaction(self.db):
            for sql, params, many in statements:
                if many:
                    self.db.executemany(sql, params)
                else:
                    self.db.execute(sql, params)

    def _retrying(self, action: Any) -> Any:
        """``action()``, tried again once if another program holds the database locked
        past the busy timeout; then a :class:`HistoryError` that says what to do."""
        for attempt in range(_TRIES):
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if _locked(exc) and attempt < _TRIES - 1:
                    time.sleep(0.2)
                    continue
                raise self._error(exc) from None
            except (sqlite3.IntegrityError, sqlite3.ProgrammingError):
                raise  # Normandy's own mistake, not the database's: shown as a bug
            except sqlite3.DatabaseError as exc:  # not a database, damaged…
                raise self._error(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self._retrying(lambda: self.db.execute(sql, params).fetchall())  # type: ignore[no-any-return]

    def _error(self, exc: sqlite3.Error) -> HistoryError:
        where = display_path(self.path)
        if _locked(exc):
            return HistoryError(
                f"the run history {where} is locked by another program (waited "
                f"{_TRIES} × {self.timeout:g} s): close what holds it (a sqlite3 shell, a "
                f"database browser) and run the command again; {TIMEOUT_VARIABLE} sets how "
                "many seconds to wait"
            )
        return HistoryError(
            f"cannot use the run history {where}: {exc}; move the file away (a new history "
            "starts empty) or restore it from a backup"
        )


def _locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _timeout() -> float:
    try:
        return max(0.0, float(os.environ.get(TIMEOUT_VARIABLE, "30")))
    except ValueError:
        return 30.0


def alive(pid: int, started: str | None = None) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs (a pid can be
    reused by another process: its start time tells them apart)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started is None or process_started(pid) in (None, started)


def process_started(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), else ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22: starttime
