"""6. Scale: planning 10,000 tasks.

``normandy run --dry-run`` on a project whose default tag selects 10,000 tasks (10 flows
of 10 steps of 4 processes with an ``iter_param`` of 25 values), as a whole process: its
wall time and its peak RSS (``ru_maxrss``, the orchestrator is that one process; measured
in a second run forked from a small launcher, see ``_harness.peak_rss_kib``). Also the
same command on a one-task project, to show what planning itself adds. For information,
Kedro building and ordering a 10,000-node pipeline (100 chains of 100 nodes) in a script.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import _projects
from _harness import HERE, Samples, kedro, kedro_python, normandy_command, peak_rss_kib, run_process
from _report import row, target

from workloads._context import Context

NAME = "scale"
TITLE = "scale"
MIB_IN_KIB = 1024


def run(ctx: Context) -> dict[str, Any]:
    tasks = ctx.size(10_000, 1_000)
    folder = ctx.folder(NAME)
    big = _projects.plan(folder / "big", tasks)
    one = _projects.noops(folder / "one", 1, 1)
    samples = Samples()

    def dry_run(project: Any, key: str) -> Callable[[], None]:
        def variant() -> None:
            argv = [*normandy_command(), "run", "--dry-run", "--project", project]
            samples.add(f"{key}.seconds", run_process(argv).seconds)
            samples.add(f"{key}.rss_mib", peak_rss_kib(argv) / MIB_IN_KIB)

        return variant

    def kedro_plan() -> None:
        proc, result = kedro("plan", "sequential", folder, "--n", str(tasks))
        samples.add("kedro.seconds", proc.seconds)
        samples.add("kedro.pipeline_seconds", result["seconds"])
        out = folder / "kedro-plan-rss.json"
        argv = [kedro_python(), HERE / "kedro_bench.py", "plan", "sequential", "--out", out]
        samples.add("kedro.rss_mib", peak_rss_kib([*argv, "--n", str(tasks)], folder) / MIB_IN_KIB)

    variants = {
        "normandy": dry_run(big, "normandy"),
        "normandy (1 task)": dry_run(one, "normandy1"),
        "kedro": kedro_plan,
    }
    ctx.log("  warm-up: each once")
    for variant in variants.values():
        variant()
    samples.series.clear()
    ctx.alternate(variants)

    s = samples.series
    for a, b in zip(s["normandy.seconds"], s["normandy1.seconds"]):
        samples.add("normandy.planning_seconds", a - b)
    m = samples.summary()
    label = f"planning {tasks:,} tasks (normandy run --dry-run, whole command)"
    kedro_label = f"Kedro: script building a {tasks:,}-node pipeline"
    rows = [
        row(
            TITLE,
            f"{label}: time",
            "s",
            m["normandy.seconds"],
            (kedro_label, m["kedro.seconds"]),
            target("≤ 1 s", "value", "<=", 1.0),
        ),
        row(
            TITLE,
            f"{label}: peak RSS",
            "MiB",
            m["normandy.rss_mib"],
            (kedro_label, m["kedro.rss_mib"]),
            target("≤ 200 MiB", "value", "<=", 200.0),
        ),
        row(
            TITLE,
            f"planning {tasks:,} tasks: time added to a 1-task dry run",
            "s",
            m["normandy.planning_seconds"],
            ("Kedro: Pipeline() + grouped_nodes", m["kedro.pipeline_seconds"]),
        ),
    ]
    return {"params": {"tasks": tasks}, "metrics": m, "rows": rows}
