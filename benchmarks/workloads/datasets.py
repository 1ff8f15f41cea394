"""10. Datasets (issue 21): the realistic pipeline of workload 9 with its files as datasets
— a CSV, an Excel workbook and a Parquet file read, the model input table (Parquet), a
model (a versioned pickle), the metrics (JSON) and five charts (PNG) written — through
normandy-io's dataset types on one side and kedro-datasets' on the other
(`benchmarks/realistic/ds_layout.py`). No task reads or writes a file: the six reader
tasks of workload 9 are gone (17 tasks), and the science and reporting flows read the
table the processing flow wrote.

- **Whole command, full pipeline**: `normandy run` (local executor, 2 workers) against
  `kedro run` (SequentialRunner) of the same catalog. Target: ≤ 0.8× Kedro's.
- **One flow alone**: `normandy run --flow science` against `kedro run --pipeline
  science`, for information.
- **With `cache: true` on every task**: a rerun with nothing changed (target ≤ 0.1× Kedro's
  full run: every dataset's stamp is checked, no file read) and a rerun with one param
  changed (a new value each time: the tasks that read it rerun, and the count of tasks
  that ran is recorded — only what depends on the param).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from _harness import HERE, Samples, kedro_python, normandy_command, run_process
from _report import row, target

from workloads._context import Context

sys.path.insert(0, str(HERE / "realistic"))

import data  # noqa: E402
import ds_projects  # noqa: E402
import projects  # noqa: E402
from ds_layout import FLOWS, ONE_FLOW  # noqa: E402

NAME = "datasets"
TITLE = "datasets"
TASKS = sum(len(tasks) for steps in FLOWS.values() for _, tasks in steps)


def normandy_io(folder: Path) -> Path:
    """normandy-io pip-installed into a folder of its own (its dataset types), from a copy
    of its source: the environment running the suite is left as it is."""
    site = folder / "site"
    if (site / "normandy_io").is_dir():
        return site
    source = folder / "normandy-io"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(
        HERE.parent / "plugins" / "normandy-io",
        source,
        ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--target", str(site), str(source)],
        check=True,
    )  # fmt: skip
    return site


def run(ctx: Context) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    folder = ctx.folder(NAME)
    sizes = {"companies": ctx.size(100_000, 10_000), "shuttles": ctx.size(6_000, 1_000)}
    sizes["reviews"] = ctx.size(300_000, 30_000)
    raw = data.make(folder / "data", **sizes)
    ctx.log(f"  data: {', '.join(f'{n} {b / 1e6:.2f} MB' for n, b in raw.items())}")
    env = {"PYTHONPATH": str(normandy_io(folder))}
    values = projects.params(folder / "data", folder / "out", ctx.quick)
    ours = ds_projects.normandy(folder / "normandy", folder / "data", values)
    theirs = ds_projects.kedro(folder / "kedro", folder / "data", values)
    samples = Samples()
    ran: dict[str, set[int]] = {}
    """Per variant, how many tasks ran (were not reused) in each of its runs."""

    def normandy(key: str, project: Path, *args: str) -> None:
        argv = [*normandy_command(), "run", "--project", project, *args]
        samples.add(key, run_process(argv, env=env).seconds)
        shown = run_process([*normandy_command(), "runs", "last", "--json", "--project", project])
        record = json.loads(shown.stdout)
        if record["status"] != "succeeded":
            raise RuntimeError(f"the datasets run ended {record['status']}")
        ran.setdefault(key, set()).add(
            sum(t["status"] not in ("cached", "not started") for t in record["tasks"])
        )

    def kedro(key: str, *args: str) -> None:
        argv = [kedro_python(), "-m", "kedro", "run", "--runner", "SequentialRunner", *args]
        samples.add(key, run_process(argv, cwd=theirs).seconds)

    variants = {
        "normandy": lambda: normandy("normandy.full", ours),
        "kedro sequential": lambda: kedro("kedro.sequential"),
        "normandy one flow": lambda: normandy("normandy.flow", ours, "--flow", ONE_FLOW),
        "kedro one pipeline": lambda: kedro("kedro.sequential_flow", "--pipeline", ONE_FLOW),
    }
    cached = ds_projects.normandy(folder / "cached", folder / "data", values, cache=True)
    normandy("warm", cached)
    trees = itertools.count(values["trees"] + 1)  # a new value each time: never reused


    def rerun_unchanged() -> None:
        # after a run with another param, the first run back at the default reruns what
        # that run overwrote (the metrics file, not versioned): settled first, untimed
        normandy("settle", cached)
        normandy("normandy.rerun", cached)

    variants["normandy rerun, nothing changed"] = rerun_unchanged
    variants["normandy rerun, one param changed"] = lambda: normandy(
        "normandy.rerun_param", cached, "--param", f"trees={next(trees)}"
    )
    ctx.log("  warm-up: each command once (bytecode, page cache, the files written)")
    for name in ("normandy", "kedro sequential"):
        variants[name]()
    samples.series.clear()
    ctx.alternate(variants)

    m = samples.summary()
    load = (load_before, os.getloadavg()[0])
    return {
        "params": {"tasks": TASKS, "flows": len(FLOWS), "workers": 2, **sizes},
        "metrics": m,
        "rows": _rows(m),
        "notes": _notes(raw, load, ran),
        "details": {"tasks_run": {k: sorted(v) for k, v in ran.items()}},
    }


def _rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    label = f"{TASKS}-task ML pipeline, its files datasets (no reader or writer task)"
    goal = target("≤ 0.8× Kedro SequentialRunner", "ratio", "<=", 0.8)
    rows = [
        row(
            TITLE,
            f"{label}: whole command, 2 workers",
            "s",
            m["normandy.full"],
            ("kedro run, SequentialRunner, kedro-datasets", m["kedro.sequential"]),
            goal,
        ),
        row(
            TITLE,
            f"one flow alone ({ONE_FLOW}), reading the table the full run wrote",
            "s",
            m["normandy.flow"],
            (f"kedro run --pipeline {ONE_FLOW}, SequentialRunner", m["kedro.sequential_flow"]),
        ),
    ]
    if "normandy.rerun" in m:  # always, since reuse verifies datasets
        rows += [
            row(
                TITLE,
                f"{label}, cache: true: rerun, nothing changed (whole command)",
                "s",
                m["normandy.rerun"],
                ("kedro run, SequentialRunner", m["kedro.sequential"]),
                target("≤ 0.1× Kedro's full run", "ratio", "<=", 0.1),
            ),
            row(
                TITLE,
                f"{label}, cache: true: one param changed (whole command)",
                "s",
                m["normandy.rerun_param"],
                ("kedro run, SequentialRunner", m["kedro.sequential"]),
            ),
        ]
    return rows


def _notes(
    raw: dict[str, int], load: tuple[float, float], ran: dict[str, set[int]]
) -> list[str]:
    files = ", ".join(f"{n} {b / 1e6:.1f} MB" for n, b in raw.items())
    lines = [
        f"The machine's load average (1 min) was {load[0]:.1f} as the workload started and "
        f"{load[1]:.1f} as it ended (2 CPUs): above 2, other programs took CPU time from "
        "both tools, and from Normandy's second worker and fork server most.",
        "",
        f"The raw files: {files}. Normandy's project declares 12 datasets in "
        "`confs.datasets` (normandy-io's `csv`, `excel`, `parquet`, `pickle` versioned, "
        "`json`, `matplotlib`), Kedro's `catalog.yml` the same 12 (kedro-datasets); "
        f"{TASKS} tasks on each side, none reading or writing a file.",
        "",
    ]
    nothing = sorted(ran.get("normandy.rerun", ()))
    one = sorted(ran.get("normandy.rerun_param", ()))
    lines += [
        f"With `cache: true`, the rerun with nothing changed ran {nothing} of the {TASKS} "
        f"tasks in each of its runs; the rerun with `--param trees=N` (a new N each time) "
        f"ran {one}: the tasks that read `trees` and those their new outputs feed. Each "
        "rerun with nothing changed follows an untimed run at the default params: the first "
        "run back at them after a `--param` run reruns the task whose output file (the "
        "metrics, not versioned) that run overwrote, as it must.",
        "",
    ]
    return lines
