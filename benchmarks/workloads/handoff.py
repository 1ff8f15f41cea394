"""4. Hand-off: a 256 MiB NumPy array, and separately a 256 MiB pandas DataFrame (float64
columns), written to the variables storage by one step and summed by the next.

Every side times the same span with the machine's clock: from the moment the producer has
built the data to the moment the consumer has summed it; building the data is not counted.
For Normandy that is the write to the storage, the commit, starting the next step, the
(memory-mapped) read and the sum; for Kedro, saving the node's output to the dataset,
loading it for the next node and the sum — ``ParallelRunner(2)`` with its
``SharedMemoryDataset`` (the default of ``SharedMemoryDataCatalog``), ``SequentialRunner``
with ``MemoryDataset`` in memory. The raw reference: ``numpy.save`` of the same bytes to
the same disk, ``numpy.load``, and the sum, in one process.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import _projects
from _harness import Samples, kedro, raw
from _report import row, target

from workloads._context import Context
from workloads._runs import run_project

NAME = "handoff"
TITLE = "hand-off"
MIB = 1 << 20


def run(ctx: Context) -> dict[str, Any]:
    nbytes = ctx.size(256, 16) * MIB
    folder = ctx.folder(NAME)
    samples = Samples()
    variants: dict[str, Callable[[], None]] = {}
    for kind in ("array", "frame"):
        variants.update(_variants(kind, nbytes, folder, samples, ctx.dask))
    ctx.log("  warm-up: each once")
    for variant in variants.values():
        variant()
    samples.series.clear()
    ctx.alternate(variants)

    for key, values in list(samples.series.items()):
        if key.endswith(".handoff"):
            for seconds in values:
                samples.add(key.replace(".handoff", ".speed"), nbytes / MIB / seconds)
    m = samples.summary()
    size = nbytes // MIB
    rows = []
    for kind, what in (("array", f"{size} MiB NumPy array"), ("frame", f"{size} MiB DataFrame")):
        speed = m[f"{kind}.normandy.speed"]
        rows += [
            row(
                TITLE,
                f"{what}: speed, write + next step + read + sum",
                "MiB/s",
                speed,
                ("raw numpy.save + numpy.load + sum", m[f"{kind}.raw.speed"]),
                target("≥ 0.7× the raw speed", "ratio", ">=", 0.7),
            ),
            row(
                TITLE,
                f"{what}: speed, same span",
                "MiB/s",
                speed,
                ("Kedro ParallelRunner(2), SharedMemoryDataset", m[f"{kind}.kedro_parallel.speed"]),
                target("≥ 10× faster", "ratio", ">=", 10.0),
            ),
            row(
                TITLE,
                f"{what}: speed, same span",
                "MiB/s",
                speed,
                ("Kedro SequentialRunner, MemoryDataset", m[f"{kind}.kedro_sequential.speed"]),
            ),
        ]
        if f"{kind}.normandy_dask.speed" in m:
            rows.append(
                row(
                    TITLE,
                    f"{what}: speed on the dask executor, LocalCluster(2)",
                    "MiB/s",
                    m[f"{kind}.normandy_dask.speed"],
                    ("Normandy's local executor", speed),
                )
            )
    return {"params": {"nbytes": nbytes, "workers": 2}, "metrics": m, "rows": rows}


def _variants(
    kind: str, nbytes: int, folder: Any, samples: Samples, dask: bool
) -> dict[str, Callable[[], None]]:
    timing = folder / f"timing-{kind}.json"
    project = _projects.handoff(folder / f"project-{kind}", kind, nbytes, timing)

    def normandy(key: str, *args: str) -> Callable[[], None]:
        def variant() -> None:
            timing.unlink(missing_ok=True)
            times = run_project(project, *args)
            t = json.loads(timing.read_text())
            samples.add(f"{kind}.{key}.handoff", t["summed"] - t["created"])
            samples.add(f"{kind}.{key}.write", t["written"] - t["created"])
            samples.add(f"{kind}.{key}.between_steps", t["opened"] - t["written"])
            samples.add(f"{kind}.{key}.read", t["loaded"] - t["opened"])
            samples.add(f"{kind}.{key}.sum", t["summed"] - t["loaded"])
            samples.add(f"{kind}.{key}.run", times.run)
            samples.add(f"{kind}.{key}.wall", times.wall)

        return variant

    def kedro_variant(runner: str) -> Callable[[], None]:
        def variant() -> None:
            timing.unlink(missing_ok=True)
            args = ("--kind", kind, "--nbytes", str(nbytes), "--timing", str(timing))
            _, t = kedro(NAME, runner, folder, *args, "--workers", "2")
            samples.add(f"{kind}.kedro_{runner}.handoff", t["summed"] - t["created"])
            samples.add(f"{kind}.kedro_{runner}.run", t["seconds"])

        return variant

    def raw_reference() -> None:
        t = raw(NAME, folder, "--kind", kind, "--nbytes", str(nbytes), "--dir", str(folder))
        samples.add(f"{kind}.raw.handoff", t["seconds"])
        for part in ("write", "read", "sum"):
            samples.add(f"{kind}.raw.{part}", t[part])

    variants = {
        f"{kind}: normandy": normandy("normandy"),
        f"{kind}: kedro parallel": kedro_variant("parallel"),
        f"{kind}: kedro sequential": kedro_variant("sequential"),
        f"{kind}: raw numpy": raw_reference,
    }
    if dask:
        variants[f"{kind}: normandy dask"] = normandy("normandy_dask", "--executor", "dask")
    return variants
