"""``normandy ui`` (SPEC 18): its start-up, and how long its busiest pages take.

- start-up: ``normandy ui --port 0`` spawned, until its first page is answered (the
  process is then stopped with Ctrl-C);
- the runs page of a history of 1,000 runs (5 tasks each), and the page of a run of 2,000
  tasks (one attempt each): each request timed from the client, over HTTP to the real
  server, so the time includes reading the history and drawing the page;
- a run of more tasks than its page lists (200) has its timeline and its flows picture
  drawn by requests of their own, which the page makes once it is shown: each is timed
  the same way, and reported beside the page (no target: the page is what is read first).

The histories are written through the history's own API (``History.start_run``,
``attempt_ended``, ``task_ended``…), as runs write them.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from _harness import ENV, Samples, normandy_command
from _report import row, target

from workloads._context import Context

NAME = "ui"
TITLE = "normandy ui"
USES_KEDRO = False


def _history(root: Path, runs: int, tasks_per_run: int, big: int) -> str:
    """Write ``runs`` runs of ``tasks_per_run`` tasks, then one of ``big`` tasks (in 20
    steps); return the big run's id."""
    from normandy_core.history import History, RunStart, TaskStart
    from normandy_core.outcomes import Outcome
    from normandy_core.plan import Task

    (root / "pipeline").mkdir(parents=True, exist_ok=True)
    (root / "pipeline" / "pipeline_conf.yml").write_text(
        "confs: {envs: {dev: {}}}\nflows: {f: {tags: [default], steps: {s: [p]}}}\n"
    )
    history = History(root / ".normandy")
    start = time.time() - 10 * (runs + 1)

    def record(run_id: str, at: float, count: int, steps: int) -> None:
        tasks = [Task("f", f"s{i % steps:02d}", f"t{i:05d}", "p", {"i": i}) for i in range(count)]
        plan = [
            {
                "name": "f",
                "tags": ["default", "nightly" if at % 2 else "weekly"],
                "steps": [
                    {
                        "name": f"s{s:02d}",
                        "skipped": [],
                        "tasks": [
                            {"name": t.name, "key": t.key, "process": "p", "params": {"i": i}}
                            for i, t in enumerate(tasks)
                            if t.step == f"s{s:02d}"
                        ],
                    }
                    for s in range(steps)
                ],
            }
        ]
        tasks.sort(key=lambda t: t.step)
        history.start_run(
            RunStart(run_id, at, ("default",), (), {}, "dev", "local", 2, "1.0", "x", plan),
            [TaskStart(t.key, t.flow, t.step, t.name, "p", dict(t.params)) for t in tasks],
        )
        with history.batch():
            for i, task in enumerate(tasks):
                began, ended = at + i * 0.001, at + i * 0.001 + 0.0009
                history.attempt_started(run_id, task.key, 1, began)
                history.attempt_ended(run_id, task.key, 1, "succeeded", began, ended, 1000 + i % 2)
                history.task_ended(
                    run_id, Outcome(task, "succeeded", attempts=1, started=began, ended=ended)
                )
        history.end_run(run_id, "succeeded", ended=at + count * 0.001 + 0.01)

    for n in range(runs):
        record(f"20260101-000000.{n:03d}-{n:04x}", start + 10 * n, tasks_per_run, 2)
    big_id = "20260102-000000.000-b1g0"
    record(big_id, start + 10 * runs, big, 20)
    history.close()
    return big_id


def _start(root: Path) -> tuple[subprocess.Popen[str], str, float]:
    """``normandy ui --port 0``: the process, its URL, and the seconds until its first
    page was answered."""
    began = time.perf_counter()
    process = subprocess.Popen(
        [*normandy_command(), "ui", "--port", "0", "--project", str(root)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    found = re.search(r"(http://\S+/)", process.stderr.readline())
    assert found, "normandy ui did not start"
    with urllib.request.urlopen(found[1] + "runs.json", timeout=60) as response:
        response.read()
    return process, found[1], time.perf_counter() - began


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _get(url: str) -> float:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
    return (time.perf_counter() - began) * 1000


def run(ctx: Context) -> dict[str, Any]:
    runs, big = ctx.size(1000, 200), ctx.size(2000, 400)
    folder = ctx.folder(NAME)
    root = folder / "project"
    ctx.log(f"  writing a history of {runs:,} runs and a run of {big:,} tasks")
    big_id = _history(root, runs, 5, big)
    samples = Samples()
    repeats = max(3, 2 * ctx.repeats)
    for rep in range(repeats):
        ctx.log(f"  [{rep + 1}/{repeats}] start-up")
        process, _, took = _start(root)
        samples.add("start_up_ms", took * 1000)
        _stop(process)
    process, url, _ = _start(root)
    try:
        pages = {
            "runs_page_ms": url,  # the series' unit: ms
            "run_page_ms": f"{url}runs/{big_id}",
            "timeline_ms": f"{url}runs/{big_id}/timeline",
            "flows_ms": f"{url}runs/{big_id}/flows",
        }
        for page in pages.values():
            _get(page)  # warm: templates compiled, connections open
        for _ in range(repeats * 2):
            for name, page in pages.items():
                samples.add(name, _get(page))
    finally:
        _stop(process)
    m = samples.summary()
    rows = [
        row(TITLE, "start-up, until its first page", "ms", m["start_up_ms"], None,
            target("≤ 500 ms", "value", "<=", 500.0)),
        row(TITLE, f"the runs page, {runs:,} runs", "ms", m["runs_page_ms"], None,
            target("≤ 100 ms", "value", "<=", 100.0)),
        row(TITLE, f"a run's page, {big:,} tasks", "ms", m["run_page_ms"], None,
            target("≤ 100 ms", "value", "<=", 100.0)),
        row(TITLE, f"its timeline, drawn after the page ({big:,} bars)", "ms", m["timeline_ms"]),
        row(TITLE, "its flows picture, drawn after the page", "ms", m["flows_ms"]),
    ]  # fmt: skip
    return {
        "params": {"runs": runs, "tasks": big, "repeats": repeats},
        "metrics": m,
        "rows": rows,
    }
