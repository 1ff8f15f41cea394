"""18. Per-task overhead (issue 27): what a no-op task, a step, a flow and a tiny run cost
Normandy alone, and where the time of a task goes. No Kedro: the fan-out and chain
workloads compare with it.

- **Targets**: 200 no-op tasks in one step ≤ 0.6 ms per task (whole command − 1-task
  command, / 199; reuse tracing on, as in every run); a chain of 100 steps ≤ 2 ms per
  step; flow to flow ≤ 10 ms (20 flows of one task against one flow, / 19); 4 no-op tasks
  in 2 flows, whole command, ≤ 0.3 s.
- **Breakdown**: the same fan-out run by a small driver that times the command's phases
  in its own process (reading and checking the project; the run, from the orchestrator's
  start to its end; what comes after), each per task as the difference between 200 tasks
  and 1; beside them, the worker's part: one no-op attempt run by ``run_task`` in
  process, as a worker runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import _projects
from _harness import ENV, Samples, clear_runs, normandy_command
from _report import row, target

from workloads._context import Context
from workloads._runs import run_project

NAME = "overhead"
TITLE = "overhead"
USES_KEDRO = False

PHASES = r"""
import json, sys, time
began = time.perf_counter()
marks = {}
import normandy_cli.app as app
import normandy_core.execution as execution
import normandy_core.project as project

def timed(module, name, key):
    real = getattr(module, name)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            marks[key] = marks.get(key, 0.0) + time.perf_counter() - start
    setattr(module, name, wrapper)

timed(project, "open_project", "read")
timed(execution, "run_plan", "run")
sys.argv = ["normandy", "run", "--no-progress", "--project", sys.argv[1]]
try:
    app.main()
except SystemExit as exc:
    code = exc.code
marks["whole"] = time.perf_counter() - began
sys.__stdout__.write("PHASES " + json.dumps(marks) + "\n")
"""
"""Runs ``normandy run`` in this interpreter (imports included in ``whole``), timing the
project's reading and the run; what is left is the command's checks, planning, start and
end."""

WORKER = r"""
import json, os, sys, tempfile, time
from pathlib import Path
root = Path(sys.argv[1])
sys.path.insert(0, str(root))
from normandy_core._tracing import install
install()
from normandy_core._packets import PacketQueue
from normandy_core._tracing._task import TraceSetup
from normandy_core.worker import TaskCall, init_worker, run_task
import threading
out = os.dup(1)
queue = PacketQueue()
def drain():
    while True:
        try:
            queue.get_many()
        except Exception:
            return
threading.Thread(target=drain, daemon=True).start()
init_worker(queue, [str(root)])
store = Path(tempfile.mkdtemp())
def call(i):
    key = f"bench.s000.noop_000_{i % 200:03d}"
    return TaskCall(run_id="r", flow="bench", step="s000", task=key.rsplit(".", 1)[1], key=key,
        process=key.rsplit(".", 1)[1], target="bench_procs:noop", params={}, tags=("default",),
        env="dev", confs={}, credentials={}, root=str(root), vars_dir=str(store / "vars"),
        staging_dir=str(store / "staging" / str(i)), attempt=1,
        tracing=TraceSetup(b"k" * 32, (), (), (), (), True))
for i in range(100):
    run_task(call(i))
n = 2000
start, cpu = time.perf_counter(), time.process_time()
for i in range(n):
    run_task(call(i))
result = {"wall": (time.perf_counter() - start) / n, "cpu": (time.process_time() - cpu) / n}
os.write(out, ("WORKER " + json.dumps(result) + "\n").encode())
"""
"""One no-op attempt after another through ``run_task``, traced, in one process: the
worker's own cost per task (its log queue drained by a thread, as the run's listener)."""


def _flows(root: Path, flows: int, per_flow: int) -> Path:
    """``flows`` flows (tag default) of one step of ``per_flow`` no-op tasks each."""
    conf = {
        "flows": {
            f"f{f:02d}": {
                "tags": ["default"],
                "steps": {"s": [f"noop_{f:02d}_{i}" for i in range(per_flow)]},
            }
            for f in range(flows)
        }
    }
    processes = {
        f"noop_{f:02d}_{i}": "bench_procs:noop" for f in range(flows) for i in range(per_flow)
    }
    return _projects._write(root, conf, processes, {})


def _driver(script: str, tag: str, project: Path) -> dict[str, float]:
    """Run one of the drivers above on ``project``; what it printed after ``tag``."""
    proc = subprocess.run(
        [sys.executable, "-c", script, str(project)],
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    clear_runs(project)
    line = next((x for x in proc.stdout.splitlines() if x.startswith(tag + " ")), None)
    if line is None:
        raise RuntimeError(f"the {tag.lower()} driver failed:\n{proc.stdout}\n{proc.stderr}")
    found: dict[str, float] = json.loads(line[len(tag) + 1 :])
    return found


def run(ctx: Context) -> dict[str, Any]:
    n = ctx.size(200, 40)
    steps = ctx.size(100, 20)
    flows = ctx.size(20, 5)
    folder = ctx.folder(NAME)
    projects = {
        "many": _projects.noops(folder / "many", 1, n),
        "one": _projects.noops(folder / "one", 1, 1),
        "chain": _projects.noops(folder / "chain", steps, 1),
        "flows": _flows(folder / "flows", flows, 1),
        "tiny": _flows(folder / "tiny", 2, 2),
    }
    samples = Samples()

    def whole(key: str) -> Any:
        return lambda: samples.add(key, run_project(projects[key]).wall)

    def phases(key: str) -> Any:
        def variant() -> None:
            for phase, seconds in _driver(PHASES, "PHASES", projects[key]).items():
                samples.add(f"phases.{key}.{phase}", seconds)

        return variant

    variants = {key: whole(key) for key in projects}
    variants["phases many"] = phases("many")
    variants["phases one"] = phases("one")
    variants["worker"] = lambda: [
        samples.add(f"worker.{k}", v) for k, v in _driver(WORKER, "WORKER", projects["one"]).items()
    ]
    ctx.log("  warm-up: each project once")
    for key in projects:
        run_project(projects[key])
    ctx.alternate(variants)

    s = samples.series
    marginal = (("task", "many", n), ("step", "chain", steps), ("flow", "flows", flows))
    for name, key, count in marginal:
        for a, b in zip(s[key], s["one"]):
            samples.add(f"per_{name}_ms", (a - b) / (count - 1) * 1000)
    for phase in ("read", "run", "whole"):
        for a, b in zip(s[f"phases.many.{phase}"], s[f"phases.one.{phase}"]):
            samples.add(f"per_task.{phase}_ms", (a - b) / (n - 1) * 1000)
    for a, b, c, d in zip(
        s["phases.many.whole"], s["phases.one.whole"], s["phases.many.run"], s["phases.one.run"]
    ):
        samples.add("per_task.rest_ms", ((a - b) - (c - d)) / (n - 1) * 1000)
    for key in ("wall", "cpu"):
        for v in s[f"worker.{key}"]:
            samples.add(f"worker.{key}_ms", v * 1000)
    m = samples.summary()
    return {
        "params": {"tasks": n, "steps": steps, "flows": flows, "workers": 2},
        "metrics": m,
        "rows": _rows(m, n, steps, flows),
        "notes": _notes(m),
    }


def _rows(m: dict[str, Any], n: int, steps: int, flows: int) -> list[dict[str, Any]]:
    return [
        row(
            TITLE,
            f"{n} no-op tasks in 1 step: overhead per task, (whole command − 1-task command) "
            f"/ {n - 1}",
            "ms",
            m["per_task_ms"],
            goal=target("≤ 0.6 ms", "value", "<=", 0.6),
        ),
        row(
            TITLE,
            f"a chain of {steps} steps of 1 no-op task: time per step, same method",
            "ms",
            m["per_step_ms"],
            goal=target("≤ 2 ms", "value", "<=", 2.0),
        ),
        row(
            TITLE,
            f"{flows} flows of 1 no-op task: time per flow, (whole command − 1 flow) / "
            f"{flows - 1}",
            "ms",
            m["per_flow_ms"],
            goal=target("≤ 10 ms", "value", "<=", 10.0),
        ),
        row(
            TITLE,
            "4 no-op tasks in 2 flows: whole command",
            "s",
            m["tiny"],
            goal=target("≤ 0.3 s", "value", "<=", 0.3),
        ),
        row(
            TITLE,
            "a no-op task's cost, part by part: reading and checking the project, per task",
            "ms",
            m["per_task.read_ms"],
            ("the whole command, per task (same driver)", m["per_task.whole_ms"]),
        ),
        row(
            TITLE,
            "a no-op task's cost, part by part: the run (orchestrator start to end), per task",
            "ms",
            m["per_task.run_ms"],
            ("the whole command, per task (same driver)", m["per_task.whole_ms"]),
        ),
        row(
            TITLE,
            "a no-op task's cost, part by part: the rest (plan, checks, start, end), per task",
            "ms",
            m["per_task.rest_ms"],
            ("the whole command, per task (same driver)", m["per_task.whole_ms"]),
        ),
        row(
            TITLE,
            "a no-op task's cost, part by part: its attempt in a worker (run_task, traced, "
            "CPU)",
            "ms",
            m["worker.cpu_ms"],
            ("the whole command, per task (same driver)", m["per_task.whole_ms"]),
        ),
    ]


def _notes(m: dict[str, Any]) -> list[str]:
    def med(key: str) -> float:
        return float(m[key]["median"]) if key in m else float("nan")

    return [
        "Where a no-op task's time goes (medians, per task, from the breakdown rows): "
        f"reading and checking the project {med('per_task.read_ms'):.2f} ms, the run "
        f"{med('per_task.run_ms'):.2f} ms, the rest {med('per_task.rest_ms'):.2f} ms; its "
        f"attempt costs a worker {med('worker.cpu_ms'):.2f} ms of CPU, and two workers share "
        "the machine's two cores with the orchestrator's three threads (the scheduler, the "
        "log listener, the pool's manager), so the run's part is bound by CPU, not by "
        "waiting.",
        "",
        f"Normandy command: `{' '.join(normandy_command())} run` (see how it is measured).",
        "",
    ]
