"""7. Logging: one task printing, and separately logging at INFO, 50 MB of 100-byte lines,
one call a line, at the default log level (so every line reaches the console, which goes
to a file here, and the run's three log files).

Speed = megabytes of lines / time from the task's first line to the moment its log file
was last written (the file's modification time): the whole path of a line, from the task
through the log queue and the orchestrator to the files, with whichever side is slower
setting the pace. The raw reference prints the same lines to a file from one process
(``raw_bench.py lines``): what the lines cost without Normandy.

Issue 11 measured about 2 MB/s (50 MB of lines in 24 s); the target is ten times that.
The code before this workload, measured here with it (2026-11-30, the machine nearly
idle), filed 3.7 MB/s printed (serial: 3.6) and 4.4 MB/s logged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import _projects
from _harness import Samples, clear_runs, normandy, raw
from _report import row, target

from workloads._context import Context

NAME = "logs"
TITLE = "logging"
USES_KEDRO = False
MB = 1_000_000
WIDTH = 99
"""Characters of a line; with its newline, 100 bytes."""
BEFORE = 2.0
"""MB/s before, as issue 11 measured it (50 MB of lines in 24 s)."""


def run(ctx: Context) -> dict[str, Any]:
    megabytes = ctx.size(50, 5)
    lines = megabytes * MB // (WIDTH + 1)
    folder = ctx.folder(NAME)
    samples = Samples()
    variants: dict[str, Callable[[], None]] = {}
    for how in ("print", "log"):
        variants[f"normandy {how}"] = _normandy(folder, how, lines, samples)
    variants["normandy print, serial"] = _normandy(folder, "print", lines, samples, "serial")

    def raw_reference() -> None:
        t = raw("lines", folder, "--n", str(lines), "--width", str(WIDTH), "--dir", str(folder))
        samples.add("raw.mb_s", megabytes / t["seconds"])

    variants["raw print to a file"] = raw_reference
    ctx.log("  warm-up: each once")
    for variant in variants.values():
        variant()
    samples.series.clear()
    ctx.alternate(variants)

    m = samples.summary()
    raw_speed = ("raw: the same prints to a file, one process", m["raw.mb_s"])
    goal = target(f"≥ 10× the {BEFORE:g} MB/s before: ≥ {10 * BEFORE:g} MB/s", "value", ">=",
                  10 * BEFORE)
    rows = [
        row(TITLE, f"{megabytes} MB printed: lines filed", "MB/s", m["print.mb_s"], raw_speed,
            goal),
        row(TITLE, f"{megabytes} MB logged (log.info): lines filed", "MB/s", m["log.mb_s"],
            raw_speed, goal),
        row(TITLE, f"{megabytes} MB printed: the task's own pace", "MB/s", m["print.task_mb_s"],
            raw_speed),
        row(TITLE, f"{megabytes} MB printed on the serial executor: lines filed", "MB/s",
            m["serial.mb_s"], ("the local executor", m["print.mb_s"])),
    ]
    return {
        "params": {"megabytes": megabytes, "lines": lines, "line_bytes": WIDTH + 1},
        "metrics": m,
        "rows": rows,
    }


def _normandy(
    folder: Any, how: str, lines: int, samples: Samples, executor: str = "local"
) -> Callable[[], None]:
    key = "serial" if executor == "serial" else how
    timing = folder / f"timing-{key}.json"
    project = _projects.chatty(folder / f"project-{key}", lines, WIDTH, how, timing)
    megabytes = lines * (WIDTH + 1) / MB

    def variant() -> None:
        timing.unlink(missing_ok=True)
        normandy("run", "--project", project, "--executor", executor, "--no-progress")
        t = json.loads(timing.read_text())
        [log_dir] = (project / "logs").iterdir()
        filed = (log_dir / "process-bench.talk.chatty.log").stat().st_mtime
        samples.add(f"{key}.mb_s", megabytes / (filed - t["started"]))
        samples.add(f"{key}.task_mb_s", megabytes / (t["emitted"] - t["started"]))
        clear_runs(project)

    return variant
