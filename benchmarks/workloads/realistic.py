"""9. Realistic (issue 16): a machine-learning pipeline whose modules import pandas,
scikit-learn and matplotlib, against Kedro running the very same functions.

Three flows (Kedro: three pipelines) of 3–4 steps, 23 tasks in all
(`benchmarks/realistic/layout.py`), on generated data of a few MB: *processing* reads a
CSV, an Excel workbook and a Parquet file, cleans and joins them and writes the model
input table (Parquet); *science* reads that table (as the last processing left it), trains
a linear model, a ridge, a random forest and gradient boosting on the shuttles' prices and
writes their metrics; *reporting* reads it too and draws five charts (PNG). Data passes
between the tasks of a flow in memory (Normandy's variables with declared outputs,
Kedro's `MemoryDataset`s); cache off.

- **Whole command, full pipeline**: `normandy run` (local executor, 2 workers) against
  `kedro run` (SequentialRunner; ParallelRunner for information) in a Kedro 1.7 project of
  the same functions. Target: ≤ 0.8× Kedro SequentialRunner's.
- **Whole command, one flow alone**: `normandy run --flow science` against
  `kedro run --pipeline science`. Target: ≤ 0.8×.
- **`normandy validate`** (whole command, it imports every process module to check it can
  be called) against importing the three modules once (`python -c "import ml_data,
  ml_science, ml_plots"`, whole command). Target: ≤ 1.2×.
- For information, the alternatives: the same run with each worker importing the
  modules for itself (`NORMANDY_PRELOAD=0`, the behaviour before issue 16), and on the
  `serial` executor. Where the time goes is measured from the runs' history and log: see
  the table under this workload's parameters.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from _harness import HERE, Samples, kedro_python, normandy_command, run_process, summarize
from _report import fmt, row, target

from workloads._context import Context

sys.path.insert(0, str(HERE / "realistic"))

import data  # noqa: E402
import projects  # noqa: E402
from layout import FLOWS, MODULES, ONE_FLOW  # noqa: E402

NAME = "realistic"
TITLE = "realistic"
TASKS = sum(len(tasks) for steps in FLOWS.values() for _, tasks in steps)
_TRIES = 4
"""Tries of Kedro's ParallelRunner run, which fails at times (see ``kedro`` in :func:`run`):
where every try fails, that repetition has no sample (and where none has, no row)."""
_PRELOADED = re.compile(r"preloaded \d+ modules? in the fork server in ([0-9.]+) s")


def run(ctx: Context) -> dict[str, Any]:
    folder = ctx.folder(NAME)
    sizes = {"companies": ctx.size(100_000, 10_000), "shuttles": ctx.size(6_000, 1_000)}
    sizes["reviews"] = ctx.size(300_000, 30_000)
    raw = data.make(folder / "data", **sizes)
    ctx.log(f"  data: {', '.join(f'{n} {b / 1e6:.2f} MB' for n, b in raw.items())}")
    values = projects.params(folder / "data", folder / "out", ctx.quick)
    ours = projects.normandy(folder / "normandy", values)
    theirs = projects.kedro(folder / "kedro", values)
    samples = Samples()
    breakdowns: list[dict[str, float]] = []

    def normandy(key: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        proc = run_process([*normandy_command(), "run", "--project", ours, *args], env=env)
        samples.add(key, proc.seconds)
        history = json.loads(
            run_process([*normandy_command(), "runs", "last", "--json", "--project", ours]).stdout
        )
        if history["status"] != "succeeded":
            raise RuntimeError(f"the realistic run ended {history['status']}")
        return {"wall": proc.seconds, "history": history, "log": _run_log(ours, history)}

    def full() -> None:
        breakdowns.append(_breakdown(normandy("normandy.full")))

    def one_flow() -> None:
        normandy("normandy.flow", "--flow", ONE_FLOW)

    def serial() -> None:
        normandy("normandy.serial", "--executor", "serial")

    failures: dict[str, int] = {}

    def kedro(key: str, *args: str, flaky: bool = False) -> None:
        argv = [kedro_python(), "-m", "kedro", "run", *args]
        for _ in range(_TRIES if flaky else 1):
            # ParallelRunner's manager process often fails here, unpickling two models
            # from two threads at once (`_DeadlockError` on an import lock of sklearn's):
            # Kedro's flake, not this workload's; counted, and the run tried again
            proc = run_process(argv, cwd=theirs, check=not flaky)
            if proc.returncode == 0:
                samples.add(key, proc.seconds)
                return
            failures[key] = failures.get(key, 0) + 1

    def imports() -> None:
        code = f"import {', '.join(MODULES)}"
        samples.add("import", run_process([sys.executable, "-c", code], cwd=ours).seconds)

    def validate() -> None:
        argv = [*normandy_command(), "validate", "--project", ours]
        samples.add("normandy.validate", run_process(argv).seconds)

    def workers_import() -> None:
        got = normandy("normandy.full_no_preload", env={"NORMANDY_PRELOAD": "0"})
        tasks = got["history"]["tasks"]
        samples.add("no_preload.import_summed", sum(t["import_duration"] for t in tasks))

    variants = {
        "normandy": full,
        "kedro sequential": lambda: kedro("kedro.sequential", "--runner", "SequentialRunner"),
        "normandy one flow": one_flow,
        "kedro one pipeline": lambda: kedro("kedro.sequential_flow", "--pipeline", ONE_FLOW),
        "import": imports,
        "validate": validate,
        "normandy, workers import": workers_import,
        "normandy serial": serial,
        "kedro parallel": lambda: kedro("kedro.parallel", "--runner", "ParallelRunner", flaky=True),
    }
    ctx.log("  warm-up: each command once (bytecode, page cache)")
    for name in ("normandy", "kedro sequential", "import"):
        variants[name]()
    samples.series.clear()
    breakdowns.clear()
    ctx.alternate(variants)

    m = samples.summary()
    parts = {key: summarize([b[key] for b in breakdowns]) for key in breakdowns[0]}
    m.update({f"normandy.part.{k}": v for k, v in parts.items()})
    notes = _notes(m, raw)
    for key, count in failures.items():
        notes += [f"`{key}`: {count} run(s) of Kedro failed (not timed; tried again).", ""]
    return {
        "params": {"tasks": TASKS, "flows": len(FLOWS), "workers": 2, **sizes},
        "metrics": m,
        "rows": _rows(m),
        "notes": notes,
        "details": {"kedro_failures": failures},
    }


def _run_log(project: Path, history: dict[str, Any]) -> str:
    try:
        return (project / "logs" / history["id"] / "run.log").read_text()
    except OSError:
        return ""


def _breakdown(got: dict[str, Any]) -> dict[str, float]:
    """Where a run's time went: the fork server's imports before the first task (from the
    run's log), and its imports of the later steps' modules, meanwhile; the tasks'
    work, summed (reading the raw files; the rest); the time its steps ran tasks (each
    step from its first task's start to its last task's end, on 2 workers); and the rest
    of the whole command (start-up, checks, scheduling between steps, history, logs)."""
    tasks = got["history"]["tasks"]
    found = [float(seconds) for seconds in _PRELOADED.findall(got["log"])]
    preload = found[0] if found else 0.0  # before the first step's workers
    second = sum(found[1:])  # the later steps', while earlier steps ran
    spans: dict[tuple[str, str], tuple[float, float]] = {}
    reads = work = 0.0
    for t in tasks:
        took = t["duration"] or 0.0
        if t["step"] == "load":
            reads += took
        else:
            work += took
        where = (t["flow"], t["step"])
        first, last = spans.get(where, (t["started"], t["ended"]))
        spans[where] = (min(first, t["started"]), max(last, t["ended"]))
    steps = sum(last - first for first, last in spans.values())
    imports = sum(t["import_duration"] for t in tasks)
    wall = got["wall"]
    return {
        "wall": wall,
        "preload": preload,
        "second_preload": second,
        "task_imports": imports,
        "reads_summed": reads,
        "work_summed": work,
        "steps": steps,
        "overhead": wall - preload - imports - steps,
    }


def _count(flow: str) -> int:
    return sum(len(tasks) for _, tasks in FLOWS[flow])


def _rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    label = f"{TASKS}-task ML pipeline (pandas, scikit-learn, matplotlib)"
    goal = target("≤ 0.8× Kedro SequentialRunner", "ratio", "<=", 0.8)
    return [
        row(
            TITLE,
            f"{label}: whole command, 2 workers",
            "s",
            m["normandy.full"],
            ("kedro run, SequentialRunner", m["kedro.sequential"]),
            goal,
        ),
        row(
            TITLE,
            f"one flow alone ({ONE_FLOW}, {_count(ONE_FLOW)} tasks): whole command",
            "s",
            m["normandy.flow"],
            (f"kedro run --pipeline {ONE_FLOW}, SequentialRunner", m["kedro.sequential_flow"]),
            goal,
        ),
        *(
            [
                row(
                    TITLE,
                    f"{label}: whole command, 2 workers",
                    "s",
                    m["normandy.full"],
                    ("kedro run, ParallelRunner(2)", m["kedro.parallel"]),
                )
            ]
            if "kedro.parallel" in m
            else []
        ),
        row(
            TITLE,
            "normandy validate (imports each process module once, to check it)",
            "s",
            m["normandy.validate"],
            ("python -c 'import' the 3 process modules", m["import"]),
            target("≤ 1.2× importing them once", "ratio", "<=", 1.2),
        ),
        row(
            TITLE,
            f"{label}: whole command, modules imported in the fork server",
            "s",
            m["normandy.full"],
            ("each worker importing them (NORMANDY_PRELOAD=0)", m["normandy.full_no_preload"]),
        ),
        row(
            TITLE,
            f"{label}: whole command on the serial executor",
            "s",
            m["normandy.serial"],
            ("kedro run, SequentialRunner", m["kedro.sequential"]),
        ),
    ]


def _notes(m: dict[str, Any], raw: dict[str, int]) -> list[str]:
    """Where the time goes, in a table of medians (for RESULTS.md)."""

    def s(key: str) -> str:
        return fmt(m[key]["median"], "s")

    kedro_rest = m["kedro.sequential"]["median"] - m["import"]["median"]
    tasks = m["normandy.part.reads_summed"]["median"] + m["normandy.part.work_summed"]["median"]
    files = ", ".join(f"{n} {b / 1e6:.1f} MB" for n, b in raw.items())
    return [
        "Where the time goes (medians of the repetitions; seconds):",
        "",
        "| part | Normandy, local, 2 workers | Kedro, SequentialRunner |",
        "|---|---|---|",
        f"| whole command | {s('normandy.full')} | {s('kedro.sequential')} |",
        f"| importing the process modules (pandas, scikit-learn, matplotlib…) | "
        f"{s('normandy.part.preload')} in the fork server, for the first step, before its "
        f"first task starts; the later steps' in {s('normandy.part.second_preload')}, in the "
        f"same server, while the earlier steps run, for their workers (reference: "
        f"`python -c import` {s('import')}, whole command) | "
        f"about {s('import')}, once, when the pipelines are registered |",
        f"| reading the raw files ({files}), summed over tasks | "
        f"{s('normandy.part.reads_summed')} | the same calls, one after another |",
        f"| the rest of the tasks' work (cleaning, a join, 4 models, 5 charts), summed | "
        f"{s('normandy.part.work_summed')} | the same calls, one after another |",
        f"| running the tasks (each step from its first task's start to its last task's "
        f"end, on 2 workers; summed over the steps) | {s('normandy.part.steps')} | every "
        f"task, one after another: about {fmt(tasks, 's')} |",
        f"| the rest: interpreter and framework start-up, reading and checking the "
        f"project, starting the workers, going from step to step, history, logs | "
        f"{s('normandy.part.overhead')} | about "
        f"{fmt(kedro_rest - tasks, 's')} (whole command − imports − tasks) |",
        "",
        "With each worker importing the modules for itself (`NORMANDY_PRELOAD=0`), the "
        f"whole command takes {s('normandy.full_no_preload')}; the tasks' workers spent "
        f"{s('no_preload.import_summed')} importing, recorded apart from the tasks' "
        "durations (`import_duration`).",
        "",
    ]
