"""``io.sql_query``, ``io.sql_load``, ``io.sql_execute`` against real SQLite databases."""

from __future__ import annotations

import logging
import sqlite3

import pandas as pd
import pytest
import sqlalchemy as sa
from normandy_io import ParamError
from normandy_io._db import database_url, masked
from normandy_io._params import Params
from normandy_io.sql import split_statements, sql_execute, sql_load, sql_query

URL = "sqlite:///db/app.sqlite"
# pandas wraps SQLAlchemy's errors in its own DatabaseError since pandas 2.2
DB_ERRORS = (sa.exc.SQLAlchemyError, pd.errors.DatabaseError)


def _rows(project, sql: str) -> list[tuple]:
    with sqlite3.connect(project / "db" / "app.sqlite") as conn:
        return conn.execute(sql).fetchall()


def _execute(make_pipe, log, statements, **extra) -> None:
    pipe = make_pipe({"statements": statements, "url": URL, **extra})
    sql_execute(pipe, log, pipe.params)


def test_load_then_query_with_a_relative_sqlite_path(make_pipe, log, project, caplog):
    pipe = make_pipe({"var": "people", "table": "people", "url": URL})
    pipe.vars["people"] = pd.DataFrame({"id": [1, 2, 3], "city": ["Oslo", "Rome", "Oslo"]})
    with caplog.at_level(logging.INFO):
        sql_load(pipe, log, pipe.params)
    assert _rows(project, "select count(*) from people") == [(3,)]
    assert [c[1] for c in _rows(project, "pragma table_info(people)")] == ["id", "city"]
    assert f"loaded 3 rows of 'people' into table people (replace) at sqlite:///{project}" in (
        caplog.text
    )

    query = "select city, count(*) as n from people where id >= :low group by city order by city"
    reader = make_pipe({"query": query, "var": "counts", "url": URL, "params": {"low": 2}})
    sql_query(reader, log, reader.params)
    assert reader.vars["counts"].to_dict("records") == [
        {"city": "Oslo", "n": 1},
        {"city": "Rome", "n": 1},
    ]


def test_load_append_replace_and_fail(make_pipe, log, project):
    def load(**params):
        pipe = make_pipe({"var": "df", "table": "t", "url": URL, **params})
        pipe.vars["df"] = pd.DataFrame({"a": [1, 2]})
        sql_load(pipe, log, pipe.params)

    load()
    load(if_exists="append")
    assert _rows(project, "select count(*) from t") == [(4,)]
    load(if_exists="replace", index=True)
    assert _rows(project, "select * from t") == [(0, 1), (1, 2)]
    with pytest.raises(ValueError, match="already exists"):
        load(if_exists="fail")
    with pytest.raises(ParamError, match="params.if_exists must be one of replace, append, fail"):
        load(if_exists="truncate")


def test_a_failed_load_keeps_the_previous_table(make_pipe, log, project):
    _execute(make_pipe, log, "create table t (a integer not null); insert into t values (7)")
    pipe = make_pipe({"var": "df", "table": "t", "url": URL, "if_exists": "append"})
    pipe.vars["df"] = pd.DataFrame({"a": [1, None]})
    with pytest.raises(DB_ERRORS, match="NOT NULL constraint failed"):
        sql_load(pipe, log, pipe.params)
    assert _rows(project, "select a from t") == [(7,)]


def test_query_from_a_file_with_options(make_pipe, log, project):
    _execute(make_pipe, log, ["create table e (d text)", "insert into e values ('2024-05-01')"])
    (project / "sql").mkdir()
    (project / "sql" / "e.sql").write_text("select d from e\n")
    params = {"query_file": "sql/e.sql", "var": "e", "url": URL, "options": {"parse_dates": ["d"]}}
    pipe = make_pipe(params)
    sql_query(pipe, log, pipe.params)
    assert pipe.vars["e"]["d"].iloc[0] == pd.Timestamp("2024-05-01")


def test_execute_is_one_transaction(make_pipe, log, project):
    _execute(make_pipe, log, "create table kept (a int)")
    script = """
        create table t (a int);   -- a comment; with a semicolon
        insert into t values (1);
        insert into kept values (1);
        insert into nope values (1);
    """
    with pytest.raises(sa.exc.OperationalError, match="no such table: nope"):
        _execute(make_pipe, log, script)
    # the CREATE TABLE before the failure was rolled back too (transactional DDL)
    assert _rows(project, "select name from sqlite_master") == [("kept",)]
    assert _rows(project, "select count(*) from kept") == [(0,)]


def test_execute_a_file_with_bound_params(make_pipe, log, project):
    (project / "schema.sql").write_text(
        "create table t (a int, s text);\ninsert into t values (:a, 'x;y');\n/* done; */\n"
    )
    pipe = make_pipe({"file": "schema.sql", "url": URL, "params": {"a": 5}})
    sql_execute(pipe, log, pipe.params)
    assert _rows(project, "select * from t") == [(5, "x;y")]


def test_a_trigger_as_one_list_item(make_pipe, log, project):
    trigger = (
        "create trigger tr after insert on t begin insert into log values (new.a); "
        "insert into log values (-new.a); end"
    )
    statements = ["create table t (a int)", "create table log (a int)", trigger]
    _execute(make_pipe, log, [*statements, "insert into t values (2)"])
    assert _rows(project, "select a from log order by a") == [(-2,), (2,)]


def test_split_statements():
    script = """
    -- heading; comment
    insert into t values ('a;b', "c;d");
    /* block; comment */ ;
    create function f() returns int as $body$ select 1; $body$ language sql;
    select 2
    """
    assert split_statements(script) == [
        "-- heading; comment\n    insert into t values ('a;b', \"c;d\")",
        "create function f() returns int as $body$ select 1; $body$ language sql",
        "select 2",
    ]
    assert split_statements("-- only a comment;\n ; ") == []


def test_credentials_fill_the_url_percent_encoded_and_masked(make_pipe):
    """A password with URL characters keeps the URL valid; what is shown is masked."""
    template = "postgresql://{credentials.db.user}:{credentials.db.password}@db.example.com/app"
    credentials = {"db": {"user": "ann@corp", "password": "p@ss/w:rd"}}
    p = Params("io.sql_query", {"url": template}, make_pipe(credentials=credentials))
    url = database_url(p)
    assert (url.username, url.password, url.host, url.database) == (
        "ann@corp",
        "p@ss/w:rd",
        "db.example.com",
        "app",
    )
    assert masked(url) == "postgresql://ann%40corp:***@db.example.com/app"


def test_a_credential_inside_a_sqlite_path(make_pipe, log, tmp_path, caplog):
    db = tmp_path / "secret folder" / "x.db"
    pipe = make_pipe(
        {"statements": "create table t (a int)", "url": "sqlite:///{credentials.file}"},
        credentials={"file": str(db)},
    )
    with caplog.at_level(logging.INFO):
        sql_execute(pipe, log, pipe.params)
    assert db.is_file()
    assert f"on sqlite:///{db}" in caplog.text


def test_confs_fill_the_url(make_pipe, log, project):
    pipe = make_pipe(
        {"statements": "create table t (a int)", "url": "sqlite:///{confs.out}/x.db"},
        confs={"out": "processed_dev"},
    )
    sql_execute(pipe, log, pipe.params)
    assert (project / "processed_dev" / "x.db").is_file()


def test_a_whole_url_from_credentials(make_pipe, log, tmp_path):
    db = tmp_path / "whole.db"
    credentials = {"warehouse": f"sqlite:///{db}"}
    pipe = make_pipe(
        {"statements": "create table t (a int)", "url": "{credentials.warehouse}"},
        credentials=credentials,
    )
    sql_execute(pipe, log, pipe.params)
    assert db.is_file()


def test_a_missing_credential_lists_the_known_names_not_the_values(make_pipe, log):
    pipe = make_pipe(
        {"query": "select 1", "var": "x", "url": "postgresql://u:{credentials.db.pw}@h/d"},
        credentials={"db": {"password": "hunter2", "user": "u"}},
    )
    with pytest.raises(ParamError) as info:
        sql_query(pipe, log, pipe.params)
    assert str(info.value) == (
        "io.sql_query: params.url refers to {credentials.db.pw}, but the credentials file of "
        "env 'dev' has no value 'db.pw' (it has: db.password, db.user)"
    )


def test_a_sql_error_fails_the_process(make_pipe, log, project):
    _execute(make_pipe, log, "create table t (a int)")
    pipe = make_pipe({"query": "select b from t", "var": "x", "url": URL})
    with pytest.raises(DB_ERRORS, match="no such column: b"):
        sql_query(pipe, log, pipe.params)
    assert "x" not in pipe.vars


def test_query_of_a_missing_sqlite_file(make_pipe, log, project):
    pipe = make_pipe({"query": "select 1", "var": "x", "url": "sqlite:///none.db"})
    with pytest.raises(FileNotFoundError, match=r"io.sql_query: no SQLite database at .*none.db"):
        sql_query(pipe, log, pipe.params)
    assert not (project / "none.db").exists()


@pytest.mark.parametrize(
    ("process", "params", "message"),
    [
        (
            sql_query,
            {"var": "x", "url": URL},
            "io.sql_query: params.query or params.query_file is required (the SELECT to run",
        ),
        (
            sql_query,
            {"query": "select 1", "query_file": "q.sql", "var": "x", "url": URL},
            "io.sql_query: params.query and params.query_file are both given: give one",
        ),
        (
            sql_query,
            {"query": "select 1", "var": "x"},
            "io.sql_query: params.url is required (a SQLAlchemy URL such as sqlite:///",
        ),
        (
            sql_query,
            {"query": "select 1", "var": "x", "url": "not a url"},
            "io.sql_query: params.url is not a valid SQLAlchemy URL: 'not a url'",
        ),
        (
            sql_query,
            {"query_file": "missing.sql", "var": "x", "url": URL},
            "io.sql_query: params.query_file names no file:",
        ),
        (
            sql_query,
            {"query": "select 1", "var": "x", "url": URL, "params": [1]},
            "io.sql_query: params.params must be a mapping (bound parameters",
        ),
        (sql_load, {"var": "df", "url": URL}, "io.sql_load: params.table is required"),
        (
            sql_load,
            {"var": "df", "table": "t", "url": URL, "index": "no"},
            "io.sql_load: params.index must be true or false",
        ),
        (
            sql_load,
            {"var": "df", "table": "t", "url": URL, "options": {"name": "u"}},
            "io.sql_load: params.options cannot set 'name'",
        ),
        (sql_execute, {"url": URL}, "io.sql_execute: params.statements or params.file is required"),
        (
            sql_execute,
            {"statements": " -- nothing", "url": URL},
            "io.sql_execute: params.statements holds no statement",
        ),
        (
            sql_execute,
            {"statements": {"a": 1}, "url": URL},
            "io.sql_execute: params.statements must be SQL text or a list of statements",
        ),
    ],
)
def test_invalid_params(make_pipe, log, process, params, message):
    pipe = make_pipe(params)
    with pytest.raises(ParamError) as info:
        process(pipe, log, pipe.params)
    assert str(info.value).startswith(message)


def test_load_of_a_missing_variable(make_pipe, log):
    pipe = make_pipe({"var": "df", "table": "t", "url": URL})
    pipe.vars["other"] = 1
    with pytest.raises(ValueError, match=r"names no variable of this flow: 'df' \(known: other\)"):
        sql_load(pipe, log, pipe.params)
