"""SQL through SQLAlchemy: ``io.sql_query``, ``io.sql_load``, ``io.sql_execute``.

Every process takes ``url`` (see :mod:`normandy_io._db`: placeholders for credentials,
SQLite paths relative to the project root) and works in one transaction. SQL text is
given to :func:`sqlalchemy.text`, so ``:name`` marks a bound parameter taken from
``params.params`` (write ``\\:`` for a literal colon before a name).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from normandy_io._db import database_url, engine_for, masked, sqlite_file
from normandy_io._params import Params, shown

if TYPE_CHECKING:
    from normandy_core.pipe import Pipe

__all__ = ["split_statements", "sql_execute", "sql_load", "sql_query"]

_IF_EXISTS = ("replace", "append", "fail")

# what a ';' inside must not split: strings, quoted names, comments, $tag$ bodies
_TOKENS = re.compile(
    r"""'(?:[^']|'')*'
    | "(?:[^"]|"")*"
    | `[^`]*`
    | --[^\n]*
    | /\*.*?\*/
    | (?P<tag>\$[A-Za-z_0-9]*\$).*?(?P=tag)
    | (?P<end>;)""",
    re.S | re.X,
)


def sql_query(pipe: Pipe, log: logging.Logger, params: dict[str, Any]) -> None:
    """Run a query and store its result as a pandas DataFrame in a variable.

    Params: ``query`` (SQL text) or ``query_file`` (a ``.sql`` file relative to the project
    root), ``var``, ``url``, ``params`` (optional bound parameters), ``options`` (optional
    keyword arguments of :func:`pandas.read_sql_query`, e.g. ``parse_dates``).
    """
    p = Params("io.sql_query", params, pipe)
    query = _sql_text(p, "query", "query_file", "the SELECT to run")
    var = p.var(what="the name of the variable to store the result in")
    url = database_url(p)
    bound = p.mapping("params", "bound parameters of the query, by name")
    options = p.options("options", pd.read_sql_query, ("sql", "con", "params"))
    database = sqlite_file(url)
    if database is not None and not database.is_file():
        raise FileNotFoundError(
            f"io.sql_query: no SQLite database at {database} (params.url {params['url']!r}, "
            "a relative path is relative to the project root)"
        )
    with engine_for(url) as engine, engine.begin() as connection:
        frame = pd.read_sql_query(sa.text(query), connection, params=bound or None, **options)
    pipe.vars.update(var, frame)
    log.info(
        "queried %d rows x %d columns from %s into %r",
        len(frame),
        len(frame.columns),
        masked(url),
        var,
    )


def sql_load(pipe: Pipe, log: logging.Logger, params: dict[str, Any]) -> None:
    """Load the DataFrame of a variable into a table, in one transaction.

    Params: ``var``, ``table``, ``url``, ``if_exists`` (``replace`` (default), ``append`` or
    ``fail``), ``index`` (write the index as a column; default false), ``schema``
    (optional), ``options`` (optional keyword arguments of :meth:`pandas.DataFrame.to_sql`,
    e.g. ``chunksize``, ``dtype``). The folder of a SQLite file is created.
    """
    p = Params("io.sql_load", params, pipe)
    var = p.var(what="the variable holding the DataFrame to load")
    table = p.text("table", "the name of the table to load into")
    url = database_url(p)
    if_exists = p.choice("if_exists", _IF_EXISTS, "replace")
    index = p.boolean("index", False)
    schema = p.text("schema", "the schema of the table", required=False)
    reserved = ("name", "con", "if_exists", "index", "schema")
    options = p.options("options", pd.DataFrame.to_sql, reserved)
    frame = p.variable(var, (pd.DataFrame,))
    with engine_for(url, create_folder=True) as engine, engine.begin() as connection:
        frame.to_sql(table, connection, if_exists=if_exists, index=index, schema=schema, **options)
    log.info(
        "loaded %d rows of %r into table %s (%s) at %s",
        len(frame),
        var,
        table,
        if_exists,
        masked(url),
    )


def sql_execute(pipe: Pipe, log: logging.Logger, params: dict[str, Any]) -> None:
    """Run DDL/DML statements in one transaction: all of them, or none if one fails.

    Params: ``statements`` (SQL text, split on top-level ``;``, or a list whose items each
    run as one statement, unsplit) or ``file`` (a ``.sql`` file relative to the project
    root, split like text), ``url``, ``params`` (optional bound parameters, given to every
    statement that names them). The folder of a SQLite file is created.
    """
    p = Params("io.sql_execute", params, pipe)
    statements = _statements(p)
    url = database_url(p)
    bound = p.mapping("params", "bound parameters of the statements, by name")
    with engine_for(url, create_folder=True) as engine, engine.begin() as connection:
        for statement in statements:
            clause = sa.text(statement)
            names = set(clause.compile().params)
            result = connection.execute(clause, {k: v for k, v in bound.items() if k in names})
            log.debug("%s -> %s row(s)", _first_line(statement), result.rowcount)
    log.info("ran %d statement(s) in one transaction on %s", len(statements), masked(url))


def split_statements(text: str) -> list[str]:
    """The statements of an SQL script, split on the ``;`` that are outside strings, quoted
    names, comments and ``$tag$`` bodies; blank and comment-only pieces are dropped.

    A statement holding ``;`` of its own (a trigger's ``BEGIN ... END``) cannot be split
    this way: give it as one item of a ``statements`` list.
    """
    pieces: list[str] = []
    start = 0
    for match in _TOKENS.finditer(text):
        if match.group("end"):
            pieces.append(text[start : match.start()])
            start = match.end()
    pieces.append(text[start:])
    return [piece.strip() for piece in pieces if not _blank(piece)]


def _blank(piece: str) -> bool:
    code = _TOKENS.sub(lambda m: "" if m.group(0)[:2] in ("--", "/*") else "x", piece)
    return not code.strip()


def _statements(p: Params) -> list[str]:
    what = "SQL text or a list of statements, or a .sql file relative to the project root"
    if p.one_of("statements", "file", what) == "file":
        return split_statements(_read_file(p, "file"))
    value = p.params["statements"]
    if isinstance(value, str):
        statements = split_statements(value)
    elif isinstance(value, list) and value and all(isinstance(s, str) for s in value):
        statements = [s.strip() for s in value if not _blank(s)]
    else:
        raise p.error("statements", f"must be SQL text or a list of statements, not {value!r}")
    if not statements:
        raise p.error("statements", "holds no statement")
    return statements


def _sql_text(p: Params, text_key: str, file_key: str, what: str) -> str:
    key = p.one_of(text_key, file_key, f"{what}: SQL text, or a .sql file")
    if key == file_key:
        return _read_file(p, file_key)
    text = p.text(text_key, what)
    assert text is not None
    return text


def _read_file(p: Params, key: str) -> str:
    path = p.path(key, "a .sql file, relative to the project root")
    assert path is not None
    if not path.is_file():
        raise p.error(key, f"names no file: {path} (relative to the project root {p.pipe.path})")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise p.error(key, f"names an empty file: {shown(p.pipe.path, path)}")
    return text


def _first_line(statement: str) -> str:
    line = statement.splitlines()[0] if statement else ""
    return line if len(line) <= 80 else line[:77] + "..."
