"""5. Start-up: commands timed as whole processes, from spawn to exit.

``normandy --version``; ``normandy list`` and ``normandy validate`` on a project with 1,000
registered processes (all used by its flows, so ``validate`` imports and checks every
one); ``normandy run`` of a one-process project. References: ``kedro --version`` from the
Kedro virtualenv and ``python -c pass``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import _projects
from _harness import KEDRO_VENV, Samples, clear_runs, normandy_command, run_process
from _report import row, target

from workloads._context import Context

NAME = "startup"
TITLE = "start-up"


def run(ctx: Context) -> dict[str, Any]:
    count = ctx.size(1000, 100)
    folder = ctx.folder(NAME)
    many = _projects.registry(folder / "registry", count)
    one = _projects.noops(folder / "one", 1, 1)
    nmd = normandy_command()
    commands: dict[str, list[Any]] = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "normandy --version": [*nmd, "--version"],
        "kedro --version": [KEDRO_VENV / "bin" / "kedro", "--version"],
        "normandy list": [*nmd, "list", "--project", many],
        "normandy validate": [*nmd, "validate", "--project", many],
        "normandy run": [*nmd, "run", "--project", one],
    }
    samples = Samples()

    def timed(name: str, argv: list[Any]) -> Callable[[], None]:
        def variant() -> None:
            samples.add(name, run_process(argv, cwd=folder).seconds * 1000)
            if name == "normandy run":
                clear_runs(one)

        return variant

    variants = {name: timed(name, argv) for name, argv in commands.items()}
    ctx.log("  warm-up: each once")
    for variant in variants.values():
        variant()
    samples.series.clear()
    repeats = max(3, 2 * ctx.repeats)  # cheap: twice the repetitions
    ctx.alternate(variants, repeats)

    m = samples.summary()
    baseline = ("python -c pass", m["python -c pass"])
    rows = [
        row(
            TITLE,
            "normandy --version",
            "ms",
            m["normandy --version"],
            baseline,
            target("≤ 150 ms", "value", "<=", 150.0),
        ),
        row(
            TITLE,
            "normandy --version",
            "ms",
            m["normandy --version"],
            ("kedro --version", m["kedro --version"]),
            target("≥ 4× faster: ratio ≤ 0.25", "ratio", "<=", 0.25),
        ),
        row(
            TITLE,
            f"normandy list, {count:,} processes",
            "ms",
            m["normandy list"],
            baseline,
            target("≤ 300 ms", "value", "<=", 300.0),
        ),
        row(
            TITLE,
            f"normandy validate, {count:,} processes",
            "ms",
            m["normandy validate"],
            baseline,
            target("≤ 300 ms", "value", "<=", 300.0),
        ),
        row(TITLE, "normandy run, 1 no-op process", "ms", m["normandy run"], baseline),
    ]
    return {"params": {"processes": count, "repeats": repeats}, "metrics": m, "rows": rows}
