"""1. Fan-out: one step of 200 no-op processes on 2 workers.

Kedro: 200 independent no-op nodes, with ``ParallelRunner(2)`` and ``SequentialRunner``.
"""

from __future__ import annotations

from typing import Any

from _report import row, target

from workloads import _noops
from workloads._context import Context

NAME = "fanout"
TITLE = "fan-out"


def run(ctx: Context) -> dict[str, Any]:
    n = ctx.size(200, 40)
    m = _noops.measure(ctx, NAME, steps=1, per_step=n, dask=ctx.dask)
    label = f"{n} no-op tasks in 1 step"
    rows = [
        row(
            TITLE,
            f"{label}: overhead per task, (whole command − 1-task command) / {n - 1}",
            "ms",
            m["normandy.overhead_ms"],
            (
                f"Kedro ParallelRunner(2), (run − 1-node run) / {n - 1}",
                m["kedro_parallel.overhead_ms"],
            ),
            target("≤ 1 ms", "value", "<=", 1.0),
        ),
        row(
            TITLE,
            f"{label}: run time",
            "s",
            m["normandy.run"],
            ("Kedro ParallelRunner(2)", m["kedro_parallel.run"]),
            target("≥ 100× faster: ratio ≤ 0.01", "ratio", "<=", 0.01),
        ),
        row(
            TITLE,
            f"{label}: run time",
            "s",
            m["normandy.run"],
            ("Kedro SequentialRunner", m["kedro_sequential.run"]),
        ),
    ]
    if "normandy_dask.run" in m:
        dask = "the dask executor, on the run's own LocalCluster(2)"
        rows += [
            row(TITLE, f"{label}: run time on {dask}", "s", m["normandy_dask.run"],
                ("Normandy's local executor", m["normandy.run"])),
            row(TITLE, f"{label}: whole command on {dask}", "s", m["normandy_dask.wall"],
                ("Normandy's local executor", m["normandy.wall"])),
        ]  # fmt: skip
    return {"params": {"tasks": n, "workers": 2}, "metrics": m, "rows": rows}
