"""Measuring no-op tasks (fan-out and chain): Normandy and Kedro with ``n`` tasks and with
one, alternating, so that the fixed costs can be subtracted within one repetition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import _projects
from _harness import Samples, kedro

from workloads._context import Context
from workloads._runs import run_project


def measure(
    ctx: Context, name: str, steps: int, per_step: int, dask: bool = False
) -> dict[str, Any]:
    """Series (seconds unless ``_ms``): ``normandy.wall``/``.run``/``.span`` with ``n``
    tasks, ``normandy1.*`` with one; ``kedro_parallel.run``/``.wall``,
    ``kedro_sequential.*`` and their ``…1`` with one node; and the marginal costs per task
    ``*.overhead_ms`` = (n tasks − 1 task) / (n − 1); with ``dask``, also
    ``normandy_dask.*`` with ``n`` tasks on the dask executor."""
    n = steps * per_step
    folder = ctx.folder(name)
    many = _projects.noops(folder / "many", steps, per_step)
    one = _projects.noops(folder / "one", 1, 1)
    samples = Samples()

    def normandy(project: Any, key: str, *args: str) -> Callable[[], None]:
        def variant() -> None:
            times = run_project(project, *args)
            samples.add(f"{key}.wall", times.wall)
            samples.add(f"{key}.run", times.run)
            samples.add(f"{key}.span", times.span())

        return variant

    def kedro_variant(runner: str, nodes: int, key: str) -> Callable[[], None]:
        def variant() -> None:
            proc, result = kedro(name, runner, folder, "--n", str(nodes), "--workers", "2")
            samples.add(f"{key}.run", result["seconds"])
            samples.add(f"{key}.wall", proc.seconds)

        return variant

    variants = {
        "normandy": normandy(many, "normandy"),
        "normandy (1 task)": normandy(one, "normandy1"),
        "kedro parallel": kedro_variant("parallel", n, "kedro_parallel"),
        "kedro parallel (1 node)": kedro_variant("parallel", 1, "kedro_parallel1"),
        "kedro sequential": kedro_variant("sequential", n, "kedro_sequential"),
        "kedro sequential (1 node)": kedro_variant("sequential", 1, "kedro_sequential1"),
    }
    if dask:  # the run's own LocalCluster of 2 workers, started and closed by each run
        variants["normandy dask"] = normandy(many, "normandy_dask", "--executor", "dask")
    ctx.log("  warm-up: Normandy once each, Kedro with 5 nodes")
    run_project(many)
    run_project(one)
    for runner in ("parallel", "sequential"):
        kedro(name, runner, folder, "--n", "5")
    ctx.alternate(variants)

    s = samples.series
    # Normandy's whole command (the strict measure); Kedro's runner time (its script's
    # whole process would add importing Kedro, which is the same with 1 or n nodes)
    for key, one_key, field in (
        ("normandy", "normandy1", "wall"),
        ("kedro_parallel", "kedro_parallel1", "run"),
        ("kedro_sequential", "kedro_sequential1", "run"),
    ):
        for a, b in zip(s[f"{key}.{field}"], s[f"{one_key}.{field}"]):
            samples.add(f"{key}.overhead_ms", (a - b) / (n - 1) * 1000)
    for a, b in zip(s["normandy.run"], s["normandy1.run"]):
        samples.add("normandy.run_overhead_ms", (a - b) / (n - 1) * 1000)
    for span in s["normandy.span"]:
        samples.add("normandy.span_per_task_ms", span / n * 1000)
    for key in ("kedro_parallel", "kedro_sequential"):
        for seconds in s[f"{key}.run"]:
            samples.add(f"{key}.per_task_ms", seconds / n * 1000)
    for seconds in s["normandy.run"]:
        samples.add("normandy.per_task_ms", seconds / n * 1000)
    return samples.summary()
