"""A table (``sql_table``: read and written) or a query's result (``sql_query``: read) of
a database, as a pandas DataFrame, through SQLAlchemy. The database is ``url`` (a
SQLAlchemy URL; a relative SQLite path is relative to the project root) or the env's
credentials entry named by ``credentials:`` (a URL, or a mapping with ``url``): keep
passwords there."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from normandy_core.datasets import Dataset, DatasetConfig, Stamp
from normandy_io.datasets import expect

_WHERE = "a SQLAlchemy URL (url: sqlite:///data/out.db) or credentials: NAME (an entry of " \
    "the env's credentials holding the URL)"


class _SQL(Dataset):
    required: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[tuple[str, ...]] = ("url",)

    @classmethod
    def check(cls, config: DatasetConfig) -> list[tuple[str, str]]:
        problems = super().check(config)
        if not config.options.get("url") and config.credentials is None:
            problems.append(("url", f"missing the database: give {_WHERE}"))
        return problems

    def _given(self) -> str:
        given = self.config.options.get("url") or self.config.credentials
        if isinstance(given, Mapping):
            given = given.get("url") or given.get("con")
        return str(given)

    def url(self) -> Any:
        """The SQLAlchemy URL, a relative SQLite path made relative to the project root."""
        import sqlalchemy as sa

        url = sa.make_url(self._given())
        file = self._sqlite_file()
        return url.set(database=file) if file is not None else url

    def _sqlite_file(self) -> str | None:
        """A SQLite database's file, read from the URL as SQLAlchemy does (without
        importing it: checking a project stays light); ``None`` for another database."""
        scheme, _, rest = self._given().partition("://")
        if scheme.split("+")[0] != "sqlite" or not rest.startswith("/"):
            return None
        database = rest[1:].split("?")[0]
        if database in ("", ":memory:") or database.startswith("file:"):
            return None
        return database if os.path.isabs(database) else os.path.join(self.config.root, database)

    def stamp(self) -> Stamp | None:
        """A SQLite database's file (any change of it counts); elsewhere, nothing cheap
        tells: it exists, changes unknown (``Stamp()``)."""
        file = self._sqlite_file()
        if file is None:
            return Stamp()
        try:
            st = os.stat(file)
        except FileNotFoundError:
            return None
        return Stamp(st.st_size, st.st_mtime)

    def _engine(self) -> Any:
        import sqlalchemy as sa

        return sa.create_engine(self.url())

    def describe(self) -> str:
        return f"{self.config.type} {self.url().render_as_string(hide_password=True)}"


class SQLTableDataset(_SQL):
    """``type: sql_table``, ``table: NAME`` — ``pandas.read_sql_table(table, con,
    **load_args)``; saved with ``DataFrame.to_sql(table, con, if_exists="replace",
    index=False, **save_args)`` in one transaction."""

    options = ("url", "table")

    @classmethod
    def check(cls, config: DatasetConfig) -> list[tuple[str, str]]:
        problems = super().check(config)
        if not config.options.get("table"):
            problems.append(("table", "missing required key 'table' (the table's name)"))
        return problems

    def load(self) -> Any:
        import pandas as pd

        engine = self._engine()
        try:
            with engine.connect() as con:
                return pd.read_sql_table(self.config.options["table"], con, **self.load_args)
        finally:
            engine.dispose()

    def save(self, data: Any) -> None:
        import pandas as pd

        frame = expect(self, data, (pd.DataFrame,), "a pandas DataFrame")
        file = self._sqlite_file()
        if file is not None:
            os.makedirs(os.path.dirname(file) or ".", exist_ok=True)
        options = {"if_exists": "replace", "index": False, **self.save_args}
        engine = self._engine()
        try:
            with engine.begin() as con:
                frame.to_sql(self.config.options["table"], con, **options)
        finally:
            engine.dispose()

    def stamp(self) -> Stamp | None:
        stamp = super().stamp()
        if stamp is None or self._sqlite_file() is None:
            return stamp
        import sqlalchemy as sa

        engine = self._engine()  # a SQLite file: cheap to ask whether the table is there
        try:
            exists = sa.inspect(engine).has_table(self.config.options["table"])
        finally:
            engine.dispose()
        return stamp if exists else None

    def describe(self) -> str:
        return f"{super().describe()} table {self.config.options.get('table')}"


class SQLQueryDataset(_SQL):
    """``type: sql_query``, ``query: SELECT …`` — ``pandas.read_sql_query(query, con,
    **load_args)``; read, not written."""

    options = ("url", "query")
    saves = False

    @classmethod
    def check(cls, config: DatasetConfig) -> list[tuple[str, str]]:
        problems = super().check(config)
        if not config.options.get("query"):
            problems.append(("query", "missing required key 'query' (the SELECT to run)"))
        return problems

    def stamp(self) -> Stamp | None:
        """The database file's, where it is a SQLite file; else (or before an earlier
        step makes the database) nothing cheap tells: ``Stamp()``. A query is checked by
        running it."""
        return super().stamp() or Stamp()

    def load(self) -> Any:
        import pandas as pd
        import sqlalchemy as sa

        engine = self._engine()
        try:
            with engine.connect() as con:
                query = sa.text(self.config.options["query"])
                return pd.read_sql_query(query, con, **self.load_args)
        finally:
            engine.dispose()

    def save(self, data: Any) -> None:
        raise TypeError(f"the dataset {self.name!r} is a query: it is read, not written")
