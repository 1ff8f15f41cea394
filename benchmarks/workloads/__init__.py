"""The workloads of the suite, in the order they run.

Each module has ``NAME``, ``TITLE`` and ``run(ctx) -> dict`` returning ``params`` (sizes),
``metrics`` (every series measured: median, min, max, samples), ``details`` and ``rows``
(what the results table shows, with the targets), and optionally ``notes`` (Markdown lines
for RESULTS.md, under the workload's parameters).
"""

from __future__ import annotations

from types import ModuleType

from workloads import (
    cached,
    chain,
    composed,
    cpu,
    datasets,
    fanout,
    flows,
    handoff,
    load,
    logs,
    notify,
    overhead,
    realistic,
    reuse,
    scale,
    stamps,
    startup,
    ui,
)

WORKLOADS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        fanout, chain, cpu, handoff, startup, scale, logs, reuse, realistic, load, cached,
        notify, ui, datasets, stamps, flows, composed, overhead,
    )
}
