"""Database URLs and engines for the SQL processes.

``params.url`` is a SQLAlchemy URL that may hold ``{credentials.KEY}`` and ``{confs.KEY}``
placeholders. A relative SQLite path (``sqlite:///data/out.db``) is resolved against the
project root. The filled URL is only ever shown with its password masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from normandy_io._params import Params, fill, resolve

_WHAT = (
    "a SQLAlchemy URL such as sqlite:///data/out.db (relative to the project root) or "
    "postgresql://{credentials.db.user}:{credentials.db.password}@host/db"
)


def database_url(p: Params, key: str = "url") -> URL:
    """The URL of ``params[key]``, placeholders filled and a relative SQLite path resolved."""
    template = p.text(key, _WHAT)
    assert template is not None
    filled = fill(template, p.pipe, p.error, key, quote=True)
    try:
        url = sa.make_url(filled)
    except Exception:  # never chained: the cause may quote the filled URL, secrets and all
        raise p.error(key, f"is not a valid SQLAlchemy URL: {template!r} ({_WHAT})") from None
    path = sqlite_file(url)
    if path is not None and not path.is_absolute():
        url = url.set(database=str(resolve(p.pipe.path, path)))
    return url


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL, or ``None`` (another database, or in memory)."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def masked(url: URL) -> str:
    """``url`` for a log line: the password replaced with ``***``."""
    return url.render_as_string(hide_password=True)


@contextmanager
def engine_for(url: URL, *, create_folder: bool = False) -> Iterator[Engine]:
    """An engine for ``url``, disposed of at the end of the block.

    SQLite connections are made fully transactional (the driver otherwise commits before
    DDL such as ``CREATE TABLE``), so that one ``engine.begin()`` block is all or nothing.
    """
    path = sqlite_file(url)
    if path is not None and create_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    if url.get_backend_name() == "sqlite":
        _transactional_sqlite(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _transactional_sqlite(engine: Engine) -> None:
    """The recipe of SQLAlchemy's SQLite dialect documentation ("Serializable isolation /
    Savepoints / Transactional DDL")."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN")
