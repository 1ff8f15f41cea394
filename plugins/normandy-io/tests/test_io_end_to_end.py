"""normandy-io pip-installed into a folder, used by a real project through the real
``normandy`` command: entry points, workers, variables, credentials masking, failures."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from normandy_core.store import read_value

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell in the flows")

PROCESSES = [
    "io.read_csv",
    "io.shell",
    "io.sql_execute",
    "io.sql_load",
    "io.sql_query",
    "io.write_csv",
    "io.write_parquet",
    "io.read_parquet",
]

CONF = """
confs:
  workers: 2
  envs:
    dev:
      credentials: conf/dev_credentials.yml
      read: raw
      write: processed
flows:
  etl:
    tags: [default]
    steps:
      extract:
        - io.read_csv: {params: {path: "{confs.read}/sales.csv", var: sales}}
      load:
        io.sql_load:
          params: {var: sales, table: sales, url: "sqlite:///{confs.write}/warehouse.db"}
      clean:
        io.sql_execute:
          params:
            url: "sqlite:///{confs.write}/warehouse.db"
            statements: |
              create index ix_sales_region on sales (region);
              delete from sales where amount < 0;
      query:
        io.sql_query:
          params:
            url: "sqlite:///{confs.write}/warehouse.db"
            query_file: sql/totals.sql
            params: {low: 0}
            var: totals
      write:
        - io.write_parquet: {params: {var: totals, path: "{confs.write}/totals.parquet"}}
        - io.write_csv: {params: {var: totals, path: "{confs.write}/out/totals.csv"}}
      check:
        io.shell:
          params:
            command: 'wc -l < "$OUT/out/totals.csv" | tr -d " "; echo "token=$TOKEN"'
            env: {OUT: "{confs.write}", TOKEN: "{credentials.api.token}"}
            var: check
            timeout: 30
"""

FILES = {
    "raw/sales.csv": """
        id,region,amount
        1,north,10
        2,south,5
        3,north,7
        4,east,-1
        5,south,3
        6,north,1
    """,
    "sql/totals.sql": """
        select region, count(*) as n, sum(amount) as total
        from sales where amount >= :low
        group by region order by region
    """,
    "conf/dev_credentials.yml": """
        api:
          token: tok-0123456789
    """,
}


def _run_dir(root: Path) -> Path:
    runs = sorted((root / ".normandy" / "runs").iterdir())
    assert len(runs) == 1
    return runs[0]


@pytest.mark.parametrize("executor", ["local", "serial"])
def test_a_flow_of_io_processes(normandy, write_project, executor):
    root = write_project(CONF, FILES)
    result = normandy("run", "--executor", executor, cwd=root)
    assert result.returncode == 0, result.output

    with sqlite3.connect(root / "processed" / "warehouse.db") as conn:
        assert conn.execute("select count(*) from sales").fetchone() == (5,)
        indexes = conn.execute("select name from sqlite_master where type = 'index'").fetchall()
        assert indexes == [("ix_sales_region",)]

    expected = pd.DataFrame({"region": ["north", "south"], "n": [3, 2], "total": [18, 8]})
    parquet = pd.read_parquet(root / "processed" / "totals.parquet")
    pd.testing.assert_frame_equal(parquet, expected, check_dtype=False)
    csv = pd.read_csv(root / "processed" / "out" / "totals.csv")
    pd.testing.assert_frame_equal(csv, expected, check_dtype=False)

    run_dir = _run_dir(root)
    check = read_value(run_dir / "vars" / "etl" / "check.nv")
    assert check == "3\ntoken=tok-0123456789\n"  # the process itself sees the credential

    log = (root / "logs" / run_dir.name / "run.log").read_text()
    assert "token=***" in log  # ... and Normandy masks it in the logs
    assert "tok-0123456789" not in result.output + log
    assert f"into table sales (replace) at sqlite:///{root}/processed/warehouse.db" in log


def test_list_shows_the_processes_of_normandy_io(normandy, write_project):
    root = write_project(CONF, FILES)
    result = normandy("list", "--json", cwd=root)
    assert result.returncode == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    for name in PROCESSES:
        assert rows[name]["source"] == "normandy-io", rows.get(name)
        assert rows[name]["kind"] == "entry point"
    assert rows["io.shell"]["target"] == "normandy_io.shell:shell"
    assert rows["io.sql_load"]["flows"] == ["etl"]
    text = normandy("list", cwd=root)
    line = next(x for x in text.stdout.splitlines() if x.startswith("io.read_csv "))
    assert line.split()[1:3] == ["normandy-io", "normandy_io.files:read_csv"]


FAILING = """
confs:
  envs: {dev: {}}
flows:
  broken:
    tags: [default]
    steps:
      one:
        io.read_csv: {params: {var: x}}
        io.shell: {params: {command: "echo about to fail >&2; exit 3"}}
        io.sql_query:
          params: {query: "select nope from nowhere", var: y, url: "sqlite:///db.sqlite"}
        io.sql_execute:
          params: {statements: "select nope from nowhere", url: "sqlite:///other.sqlite"}
      two:
        - io.write_csv: {params: {var: x, path: never.csv}}
"""


def test_failures_are_reported_per_process(normandy, write_project):
    root = write_project(FAILING)
    result = normandy("run", cwd=root)
    assert result.returncode == 1, result.output
    output = result.output
    assert (
        "io.read_csv: params.path is required (the CSV file, relative to the project root)"
        in output
    )
    assert "io.shell: the command exited with code 3: echo about to fail >&2; exit 3" in output
    assert "no such table: nowhere" in output
    assert "io.sql_query: no SQLite database at" in output
    assert not (root / "never.csv").exists()


def test_normandy_timeout_stops_the_shell_and_its_children(normandy, write_project, alive):
    """Normandy stops the worker at the task's timeout (SIGTERM); io.shell takes its
    command's process group down with it."""
    conf = """
    confs:
      envs: {dev: {}}
    flows:
      slow:
        tags: [default]
        steps:
          wait:
            io.shell:
              params: {command: "sleep 60 & echo $! > child.pid; wait"}
              timeout: 1.5
    """
    root = write_project(conf)
    started = time.monotonic()
    result = normandy("run", cwd=root)
    assert result.returncode == 1, result.output
    assert time.monotonic() - started < 30
    assert "timeout" in result.output
    child = int((root / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


DATASETS = """
confs:
  workers: 2
  processes:
    clean: procs:clean
    passthrough: procs:passthrough
    summarize: procs:summarize
  datasets:
    sales: {type: csv, path: raw/sales.csv}
    clean_sales: {type: parquet, path: processed/clean.parquet}
    warehouse: {type: sql_table, table: sales, credentials: db}
    by_region:
      type: sql_query
      credentials: db
      query: select region, sum(amount) as total from sales group by region order by region
    report: {type: json, path: processed/report.json, versioned: true}
  envs:
    dev: {credentials: conf/dev_credentials.yml}
flows:
  etl:
    tags: [default]
    steps:
      clean:
        clean: {outputs: clean_sales}
      load:
        store: {process: passthrough, inputs: {frame: clean_sales}, outputs: warehouse}
      report:
        summarize: {inputs: {frame: by_region}, outputs: report}
"""

PROCS = """
def clean(sales):
    return sales[sales["amount"] >= 0].reset_index(drop=True)


def passthrough(frame):
    return frame


def summarize(frame):
    return dict(zip(frame["region"], frame["total"].astype(int)))
"""


def test_a_flow_of_datasets_with_no_reader_or_writer_task(normandy, write_project, site):
    files = {
        **FILES,
        "procs.py": PROCS,
        "conf/dev_credentials.yml": 'db: "sqlite:///processed/warehouse.db"\n',
    }
    root = write_project(DATASETS, files)
    # validating reads no data and imports no pandas: the types' modules are light
    code = (
        "import sys\nfrom normandy_cli.app import main\n"
        "try:\n    main(['validate'])\nexcept SystemExit as exc:\n    assert not exc.code\n"
        "print([m for m in ('pandas', 'pyarrow', 'sqlalchemy', 'fsspec') if m in sys.modules])"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    checked = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip().splitlines()[-1] == "[]"

    result = normandy("run", cwd=root)
    assert result.returncode == 0, result.output
    run_id = json.loads(normandy("runs", "last", "--json", cwd=root).stdout)["id"]
    clean = pd.read_parquet(root / "processed" / "clean.parquet")
    assert len(clean) == 5
    with sqlite3.connect(root / "processed" / "warehouse.db") as conn:
        assert conn.execute("select count(*) from sales").fetchone() == (5,)
    report = root / "processed" / "report.json" / run_id / "report.json"
    assert json.loads(report.read_text()) == {"north": 18, "south": 8}

    listed = json.loads(normandy("datasets", "--json", cwd=root).stdout)["datasets"]
    by_name = {d["name"]: d for d in listed}
    assert by_name["report"]["version"] == run_id
    assert by_name["warehouse"]["written_task"] == "etl.load.store"
    assert by_name["sales"]["size"] == (root / "raw" / "sales.csv").stat().st_size
    graph = normandy("graph", "--format", "mermaid", cwd=root).stdout
    assert 'd_warehouse[("warehouse<br/>sql_table")]' in graph
    assert "t_etl_load_store --> d_warehouse" in graph

