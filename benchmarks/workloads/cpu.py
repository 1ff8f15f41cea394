"""3. CPU: 8 processes of about 0.5 s of pure-Python work each, on 2 workers.

Reported as the speedup over running the same 8 calls one after another (in a fresh
process, measured in every repetition), next to a bare ``ProcessPoolExecutor(2)`` doing
the same calls, and Kedro's ``ParallelRunner(2)`` for information. Normandy's time is the
run's own duration from its history (worker pool start to stop), the raw pool's and
Kedro's their time from creating the pool to its shutdown: none counts interpreter
start-up.
"""

from __future__ import annotations

from typing import Any

import _projects
import work
from _harness import Samples, kedro, raw
from _report import row, target

from workloads._context import Context
from workloads._runs import run_project

NAME = "cpu"
TITLE = "CPU"


def run(ctx: Context) -> dict[str, Any]:
    tasks = ctx.size(8, 4)
    seconds = 0.5 if not ctx.quick else 0.1
    iterations = work.calibrate(seconds)
    ctx.log(f"  {iterations:,} iterations ≈ {seconds} s a call here")
    folder = ctx.folder(NAME)
    project = _projects.cpu(folder / "project", tasks, iterations)
    args = ("--n", str(tasks), "--iterations", str(iterations), "--workers", "2")
    samples = Samples()

    def serial() -> None:
        samples.add("serial", raw("serial", folder, *args)["seconds"])

    def pool() -> None:
        samples.add("raw_pool", raw("pool", folder, *args)["seconds"])

    def normandy() -> None:
        times = run_project(project)
        samples.add("normandy.run", times.run)
        samples.add("normandy.wall", times.wall)

    def kedro_parallel() -> None:
        samples.add("kedro_parallel", kedro(NAME, "parallel", folder, *args)[1]["seconds"])

    variants = {
        "serial": serial,
        "raw pool": pool,
        "normandy": normandy,
        "kedro parallel": kedro_parallel,
    }
    ctx.log("  warm-up: Normandy once")
    run_project(project)
    ctx.alternate(variants)

    s = samples.series
    for key, series in (
        ("normandy", s["normandy.run"]),
        ("raw_pool", s["raw_pool"]),
        ("kedro_parallel", s["kedro_parallel"]),
    ):
        for base, took in zip(s["serial"], series):
            samples.add(f"{key}.speedup", base / took)
    m = samples.summary()
    label = f"{tasks} × {seconds} s of pure Python on 2 workers"
    rows = [
        row(
            TITLE,
            f"{label}: speedup over serial",
            "×",
            m["normandy.speedup"],
            ("raw ProcessPoolExecutor(2)", m["raw_pool.speedup"]),
            target("≥ 0.95× the raw pool's", "ratio", ">=", 0.95),
        ),
        row(
            TITLE,
            f"{label}: speedup over serial",
            "×",
            m["normandy.speedup"],
            ("Kedro ParallelRunner(2)", m["kedro_parallel.speedup"]),
        ),
    ]
    params = {"tasks": tasks, "seconds_per_task": seconds, "iterations": iterations, "workers": 2}
    return {"params": params, "metrics": m, "rows": rows}
