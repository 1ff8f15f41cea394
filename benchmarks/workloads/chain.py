"""2. Chain: 100 steps of one no-op process each.

Kedro: a chain of 100 nodes, each taking the previous one's output, with
``ParallelRunner(2)`` and ``SequentialRunner``.
"""

from __future__ import annotations

from typing import Any

from _report import row, target

from workloads import _noops
from workloads._context import Context

NAME = "chain"
TITLE = "chain"


def run(ctx: Context) -> dict[str, Any]:
    n = ctx.size(100, 20)
    m = _noops.measure(ctx, NAME, steps=n, per_step=1)
    label = f"{n} steps of 1 no-op task"
    rows = [
        row(
            TITLE,
            f"{label}: time per step, (whole command − 1-step command) / {n - 1}",
            "ms",
            m["normandy.overhead_ms"],
            (
                f"Kedro ParallelRunner(2), (run − 1-node run) / {n - 1}",
                m["kedro_parallel.overhead_ms"],
            ),
            target("≤ 2 ms", "value", "<=", 2.0),
        ),
        row(
            TITLE,
            f"{label}: time per step, same method",
            "ms",
            m["normandy.overhead_ms"],
            ("Kedro SequentialRunner", m["kedro_sequential.overhead_ms"]),
        ),
        row(
            TITLE,
            f"{label}: run time",
            "s",
            m["normandy.run"],
            ("Kedro ParallelRunner(2)", m["kedro_parallel.run"]),
        ),
        row(
            TITLE,
            f"{label}: run time",
            "s",
            m["normandy.run"],
            ("Kedro SequentialRunner", m["kedro_sequential.run"]),
        ),
    ]
    return {"params": {"steps": n, "workers": 2}, "metrics": m, "rows": rows}
