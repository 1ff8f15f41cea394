"""8. Reuse (issue 15): what skipping unchanged work saves, and what it costs.

- **Rerun, nothing changed**: 5 chains of 4 steps (20 tasks), each task burning ~0.5 s of
  CPU and handing an 8 MB array to the next step (declared inputs and outputs), with
  ``cache: true``, on 2 workers: the whole command of a first run on an empty store, then
  of a rerun (every task reused), then of a run after one param changed (that task and
  the 3 downstream of it run). Target: the rerun ≤ 0.1× the first run.
- **What fingerprinting costs**: per task, the decision and the fingerprint as the history
  stores it, timed in one process on the fan-out's plan (200 no-op tasks, a fresh history:
  ``parts_bench.py fingerprint``), against the fan-out's overhead per task (whole
  commands, (200 − 1) tasks, as workload 1) measured in the same session; for the
  hand-off, what the content hash adds to writing 256 MiB the store's way (the write with
  the store's hasher and with one that does nothing, alternating: ``parts_bench.py
  hash``), against the hand-off's span (write + next step + read + sum). Targets: ≤ 10 %
  of each.
- **What tracing costs** (issue 20): per task, recording what a task reads while it runs
  and making the fingerprint of it (``parts_bench.py tracing``, in one process): on a
  no-op process, ``run_task`` with tracing against without (before and after) plus
  ``Reuse.of_attempt``; on the realistic pipeline's 23 tasks (workload 9's functions and
  data), the time spent in the tracing code itself (most of it: Python calling the audit
  hook for each of the ~900 ``builtins.id`` events pandas raises per task), after what a
  worker pays once (measured apart). Targets: ≤ 5 % of the fan-out's overhead per task
  (the no-op), ≤ 5 % of the tasks' own time (the realistic pipeline).
- **gc on 1,000 runs**: ``normandy gc --keep 20`` (whole command) on a project whose
  history holds 1,000 runs, each with two variables and a log folder; the reference is
  deleting the same 980 runs' folders with ``shutil.rmtree`` in one process. Target: < 2 s.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _projects
import work
from _harness import HERE, Samples, normandy, run_process
from _report import row, target

from workloads._context import Context
from workloads._runs import run_project

NAME = "reuse"
TITLE = "reuse"
USES_KEDRO = False
MIB = 1 << 20
CHAINS, STEPS = 5, 4

REUSE_PROCS = '''\
"""A pipeline worth not running twice: every task burns the CPU and passes an array on."""

import numpy as np

from bench_work import burn


def start(params):
    burn(params["iterations"])
    return np.full(params["floats"], float(params["seed"]))


def grow(data, params):
    burn(params["iterations"])
    return data * 1.5 + 1.0
'''


def run(ctx: Context) -> dict[str, Any]:
    folder = ctx.folder(NAME)
    samples = Samples()
    task_seconds = ctx.size(5, 1) / 10  # 20 tasks on 2 workers: ~5 s (quick: ~1 s)
    iterations = work.calibrate(task_seconds)
    pipeline = _pipeline(folder / "pipeline", iterations, floats=1 << 20)
    fanout = _projects.noops(folder / "fanout", 1, ctx.size(200, 40))
    one = _projects.noops(folder / "one", 1, 1)
    mib = ctx.size(256, 16)
    timing = folder / "timing-handoff.json"
    handoff = _projects.handoff(folder / "handoff", "array", mib * MIB, timing)
    runs = ctx.size(1000, 200)
    template = _many_runs(folder / "gc-template", runs)

    def rerun() -> None:
        _clear(pipeline)
        for key, args in (("first", ()), ("rerun", ()), ("changed", ("--flow", "bench"))):
            if key == "changed":
                _set_seed(pipeline, 1)
            proc = normandy("run", "--project", pipeline, "--json", *args)
            summary = json.loads(proc.stdout)
            ran = sum(t["status"] == "succeeded" for t in summary["tasks"])
            samples.add(f"{key}.wall", proc.seconds)
            samples.add(f"{key}.ran", ran)
        _set_seed(pipeline, 0)

    realistic_data = folder / "realistic-data"
    _realistic_data(realistic_data, ctx)

    def fan_out() -> None:
        many, single = run_project(fanout), run_project(one)
        n = len(many.history["tasks"])
        samples.add("fanout.overhead_ms", (many.wall - single.wall) / (n - 1) * 1000)
        parts = _parts(folder, "fingerprint", "--project", str(fanout))
        samples.add("fanout.fingerprint_ms", parts["seconds"] * 1000)
        traced = _parts(folder, "tracing", "--data", str(realistic_data), "--repeats", "2")
        samples.add("tracing.noop_us", traced["seconds"] * 1e6)
        samples.add("tracing.noop_worker_us", traced["noop"]["worker"] * 1e6)
        samples.add("tracing.noop_fingerprint_us", traced["noop"]["fingerprint"] * 1e6)
        samples.add("tracing.run_task_before_us", traced["plain"] * 1e6)
        realistic = traced["realistic"]
        samples.add("tracing.realistic_us", realistic["seconds"] * 1e6)
        samples.add("tracing.realistic_once_s", realistic["once"])
        samples.add("tracing.realistic_task_us", realistic["parts"]["task"] * 1e6)
        samples.add("tracing.realistic_events", realistic["parts"]["events"])

    def hand_off() -> None:
        timing.unlink(missing_ok=True)
        run_project(handoff)
        t = json.loads(timing.read_text())
        samples.add("handoff.span", t["summed"] - t["created"])
        parts = _parts(folder, "hash", "--mib", str(mib), "--dir", str(folder))
        samples.add("handoff.hash", parts["seconds"])

    def gc() -> None:
        project = folder / "gc"
        shutil.rmtree(project, ignore_errors=True)
        shutil.copytree(template, project, symlinks=True)
        proc = normandy("gc", "--keep", "20", "--project", project)
        samples.add("gc.wall", proc.seconds)
        if len(list((project / ".normandy" / "runs").iterdir())) != 20:
            raise RuntimeError(f"gc kept the wrong runs: {proc.stderr}")
        shutil.rmtree(project)
        shutil.copytree(template, project, symlinks=True)
        start = time.perf_counter()
        for folder_ in sorted((project / ".normandy" / "runs").iterdir())[:-20]:
            shutil.rmtree(folder_)
            shutil.rmtree(project / "logs" / folder_.name)
        samples.add("gc.raw", time.perf_counter() - start)

    variants: dict[str, Callable[[], None]] = {
        "first run, rerun, one param changed": rerun,
        "fan-out, its fingerprints and tracing": fan_out,
        "hand-off and its hash": hand_off,
        "gc": gc,
    }
    ctx.log("  warm-up: each once")
    for variant in variants.values():
        variant()
    samples.series.clear()
    ctx.alternate(variants)

    m = samples.summary()
    first = ("the first run, on an empty store", m["first.wall"])
    tasks = CHAINS * STEPS
    n = ctx.size(200, 40)
    rows = [
        row(TITLE, f"{tasks} tasks of ~{task_seconds:g} s: rerun, nothing changed (whole command)",
            "s", m["rerun.wall"], first, target("≤ 0.1× the first run", "ratio", "<=", 0.1)),
        row(TITLE, f"{tasks} tasks: one param changed, 4 tasks run (whole command)", "s",
            m["changed.wall"], first),
        row(TITLE, f"fan-out, {n} tasks: fingerprinting per task (in process)", "ms",
            m["fanout.fingerprint_ms"],
            (f"the fan-out's overhead per task, (whole command − 1-task) / {n - 1}",
             m["fanout.overhead_ms"]),
            target("≤ 10 % of it", "ratio", "<=", 0.1)),
        row(TITLE, "tracing per task, a no-op process (in process: recording + its fingerprint)",
            "µs", m["tracing.noop_us"],
            (f"the fan-out's overhead per task, (whole command − 1-task) / {n - 1}",
             _micro(m["fanout.overhead_ms"])),
            target("≤ 5 % of it", "ratio", "<=", 0.05)),
        row(TITLE, "tracing per task, the realistic pipeline's 23 tasks (in process)", "µs",
            m["tracing.realistic_us"],
            ("the same tasks' own time, per task", m["tracing.realistic_task_us"]),
            target("≤ 5 % of it", "ratio", "<=", 0.05)),
        row(TITLE, "tracing per task, the realistic pipeline's 23 tasks (in process)", "µs",
            m["tracing.realistic_us"],
            (f"the fan-out's overhead per task, (whole command − 1-task) / {n - 1}",
             _micro(m["fanout.overhead_ms"]))),
        row(TITLE, "tracing, once per worker: the libraries' imports indexed, their versions "
            "looked up (realistic pipeline)", "s", m["tracing.realistic_once_s"]),
        row(TITLE, f"hand-off, {mib} MiB array: what its content hash adds to writing it", "s",
            m["handoff.hash"],
            ("the hand-off's span: write + next step + read + sum", m["handoff.span"]),
            target("≤ 10 % of it", "ratio", "<=", 0.1)),
        row(TITLE, f"normandy gc --keep 20 on {runs:,} runs (whole command)", "s", m["gc.wall"],
            (f"shutil.rmtree of the same {runs - 20:,} runs' folders, in process", m["gc.raw"]),
            target("< 2 s", "value", "<=", 2.0)),
    ]  # fmt: skip
    ran = {key: m[f"{key}.ran"]["median"] for key in ("first", "rerun", "changed")}
    if ran != {"first": tasks, "rerun": 0, "changed": STEPS}:
        raise RuntimeError(f"tasks run, by run: {ran}; expected {tasks}, 0 and {STEPS}")
    return {
        "params": {"tasks": tasks, "task_seconds": task_seconds, "fanout": n, "mib": mib,
                   "gc_runs": runs},
        "metrics": m,
        "rows": rows,
    }  # fmt: skip


def _pipeline(root: Path, iterations: int, floats: int) -> Path:
    steps: dict[str, dict[str, Any]] = {}
    for s in range(STEPS):
        step = steps[f"s{s}"] = {}
        for c in range(CHAINS):
            if s == 0:
                entry = {"process": "start", "params": {"seed": 0}, "outputs": f"v0_{c}"}
            else:
                entry = {"process": "grow", "inputs": {"data": f"v{s - 1}_{c}"}}
                entry["outputs"] = f"v{s}_{c}"
            step[f"t{s}_{c}"] = entry
    flow = {
        "tags": ["default"],
        "params": {"iterations": iterations, "floats": floats},
        "steps": steps,
    }
    processes = {"start": "reuse_procs:start", "grow": "reuse_procs:grow"}
    project = _projects._write(
        root, {"flows": {"bench": flow}}, processes, {"reuse_procs.py": REUSE_PROCS}
    )
    conf = project / "pipeline" / "pipeline_conf.yml"
    data = json.loads(conf.read_text())
    data["confs"]["cache"] = True
    conf.write_text(json.dumps(data, indent=1) + "\n")
    return project


def _set_seed(project: Path, seed: int) -> None:
    conf = project / "pipeline" / "pipeline_conf.yml"
    data = json.loads(conf.read_text())
    data["flows"]["bench"]["steps"]["s0"]["t0_0"]["params"]["seed"] = seed
    conf.write_text(json.dumps(data, indent=1) + "\n")


def _clear(project: Path) -> None:
    shutil.rmtree(project / ".normandy", ignore_errors=True)
    shutil.rmtree(project / "logs", ignore_errors=True)


def _parts(folder: Path, what: str, *args: str) -> dict[str, Any]:
    out = folder / f"parts-{what}.json"
    out.unlink(missing_ok=True)
    argv = [sys.executable, HERE / "parts_bench.py", what, *args, "--out", out]
    run_process(argv, cwd=folder)
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def _micro(ms: dict[str, Any]) -> dict[str, Any]:
    """A summary in milliseconds, in microseconds."""
    return {k: ms[k] * 1000 for k in ("median", "min", "max")}


def _realistic_data(folder: Path, ctx: Context) -> None:
    """Workload 9's raw files, at its sizes (what its loaders read)."""
    sys.path.insert(0, str(HERE / "realistic"))
    import data  # type: ignore[import-not-found]

    if not (folder / "companies.csv").exists():
        data.make(
            folder,
            companies=ctx.size(100_000, 10_000),
            shuttles=ctx.size(6_000, 1_000),
            reviews=ctx.size(300_000, 30_000),
        )


def _many_runs(root: Path, count: int) -> Path:
    """A project whose history holds ``count`` ended runs, each with two small variables
    and a log folder: what a year of nightly runs leaves."""
    from normandy_core.history import History, RunStart, TaskStart

    project = _projects.noops(root, 1, 1)
    history = History(project / ".normandy")
    start = time.time() - count * 86400
    try:
        for i in range(count):
            run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(start + i * 86400))}.000-{i:04x}"
            history.start_run(
                RunStart(run_id, start + i * 86400, ("default",), (), {}, "dev", "local", 2,
                         "bench", "0" * 16, []),
                [TaskStart("bench.s000.noop_000_000", "bench", "s000", "noop_000_000",
                           "noop_000_000", {})],
            )  # fmt: skip
            history.end_run(run_id, "succeeded", ended=start + i * 86400 + 1)
            variables = project / ".normandy" / "runs" / run_id / "vars" / "bench"
            variables.mkdir(parents=True)
            for name in ("a", "b"):
                (variables / f"{name}.nv").write_bytes(b"x" * 4096)
            (project / "logs" / run_id).mkdir(parents=True)
            (project / "logs" / run_id / "run.log").write_text("a line\n" * 20)
    finally:
        history.close()
    return project
