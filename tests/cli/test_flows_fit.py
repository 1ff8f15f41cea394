"""Flows that fit the work (SPEC 19, 20), end to end with the real command and real
workers: pools bound what runs at once whatever the workers (each task records, through
files, how many were running as it entered), a ``map`` fans out over a variable written
at run time (each element cached on its own, resumed, in a partial run), and
``confs.schedule: dataflow`` starts a task once what it reads is written, runs flows that
share nothing side by side, and refuses a read that was not declared."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, RunNormandy

PROCS = """
import json
import os
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def enter(pipe, params):
    running = HERE / f"running-{params.get('pool', 'none')}"
    running.mkdir(exist_ok=True)
    me = running / f"{pipe.task}-{os.getpid()}"
    me.write_text("")
    try:
        seen = len(list(running.iterdir()))
        with open(HERE / f"seen-{params.get('pool', 'none')}.txt", "a") as out:
            out.write(f"{seen}\\n")
        time.sleep(params.get("sleep", 0.4))
    finally:
        me.unlink()


def listing():
    return json.loads((HERE / "files.json").read_text())


def handle(item):
    with open(HERE / "ran.txt", "a") as out:
        out.write(f"{item}\\n")
    if item == "x" and not (HERE / "fixed").exists():
        raise ValueError(f"cannot handle {item}")
    return item.upper()


def total(results):
    (HERE / "total.json").write_text(json.dumps(results))
    return len(results)


def nap(params):
    time.sleep(params["sleep"])
    return params["sleep"]


def after(x):
    return x


def reads_by_name(pipe, params):
    return pipe.vars[params["name"]]
"""

PROCESSES = """
  processes:
    enter: procs:enter
    listing: procs:listing
    handle: procs:handle
    total: procs:total
    nap: procs:nap
    after: procs:after
    reads_by_name: procs:reads_by_name
"""


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Callable[[str], Path]:
    def make(text: str) -> Path:
        head, _, flows = text.partition("flows:")
        conf = head.rstrip() + "\n" + PROCESSES.strip("\n") + "\nflows:" + flows
        return make_project(conf, {"procs.py": PROCS})

    return make


def runs_json(normandy: RunNormandy, root: Path) -> dict[str, Any]:
    got = normandy("runs", "last", "--json", "--project", str(root))
    assert got.returncode == 0, got.output
    return json.loads(got.stdout)  # type: ignore[no-any-return]


def seen(root: Path, pool: str) -> list[int]:
    return [int(n) for n in (root / f"seen-{pool}.txt").read_text().split()]


POOLS = """
confs:
  workers: 4
  pools: {db: UNITS}
  envs: {dev: }
flows:
  f:
    tags: [default]
    steps:
      s:
        bounded:
          process: enter
          pool: db
          params: {pool: db}
          iter_param: {name: n, values: [1, 2, 3, 4, 5, 6]}
        free:
          process: enter
          params: {pool: free, sleep: 1.2}
          iter_param: {name: n, values: [1, 2]}
"""


@pytest.mark.parametrize("executor", ["local", "serial", "dask"])
def test_a_pool_bounds_the_tasks_running_at_once_whatever_the_workers(
    normandy: RunNormandy, project: Callable[[str], Path], executor_args, executor: str
) -> None:
    units = 1 if executor == "dask" else 2  # the dask cluster of the tests has 2 workers
    root = project(POOLS.replace("UNITS", str(units)))
    got = normandy("run", "--no-progress", "--project", str(root), *executor_args(executor))
    assert got.returncode == 0, got.output
    bounded = seen(root, "db")  # how many were running as each entered, itself included
    assert len(bounded) == 6 and max(bounded) <= units
    if executor == "local":  # 4 workers: the pool, not the workers, bounds them
        assert max(bounded) == units
    history = runs_json(normandy, root)
    spans = {t["task"]: (t["started"], t["ended"]) for t in history["tasks"]}
    held = [name for name in spans if name.startswith("bounded")]
    for name in held:
        start = spans[name][0]
        at_once = [o for o in held if spans[o][0] <= start < spans[o][1]]
        assert len(at_once) <= units, (name, at_once)
    waited = [t for t in history["tasks"] if t["task"].startswith("bounded") and t["waited"]]
    if executor != "serial":  # serial runs one at a time: nothing ever waits for the pool
        assert "waiting (pool db)" in got.stderr
        assert waited and all(t["waiting"] is None for t in history["tasks"])
        free = [spans["free[1]"], spans["free[2]"]]
        assert any(s < spans[n][1] and spans[n][0] < e for s, e in free for n in held), (
            "the tasks without a pool ran beside the bounded ones"
        )
    assert "WAITED" in got.stderr or executor == "serial"


MAP = """
confs:
  workers: 2
  cache: true
  envs: {dev: }
flows:
  f:
    tags: [default]
    steps:
      list:
        listing: {outputs: files, cache: false}
      each:
        handle: {map: files, outputs: results, max_map: 5}
      sum:
        total: {outputs: n}
"""


def ran(root: Path) -> list[str]:
    file = root / "ran.txt"
    found = file.read_text().split() if file.exists() else []
    file.unlink(missing_ok=True)
    return found


def test_a_map_runs_each_element_caches_each_on_its_own_and_resumes(
    normandy: RunNormandy, project: Callable[[str], Path]
) -> None:
    root = project(MAP)

    def run(*args: str, files: list[str] | None = None) -> Result:
        if files is not None:
            (root / "files.json").write_text(json.dumps(files))
        return normandy("run", "--no-progress", "--project", str(root), *args)

    got = run(files=["a", "b", "c"])
    assert got.returncode == 0, got.output
    assert sorted(ran(root)) == ["a", "b", "c"]
    assert json.loads((root / "total.json").read_text()) == ["A", "B", "C"]
    assert "f.each.handle mapped over files: 3 tasks" in got.stderr
    assert "f.each.handle[*]: 3 done" in got.stderr
    assert "handle[*]  3 succeeded" in got.stderr  # the summary: one row for the group
    assert "5 tasks in" in got.stderr  # its elements counted, not it
    history = runs_json(normandy, root)
    elements = [t for t in history["tasks"] if t["parent"] == "f.each.handle"]
    assert [t["task"] for t in elements] == ["handle[a]", "handle[b]", "handle[c]"]

    # an element appended: its task alone runs; the others are reused
    got = run(files=["a", "b", "c", "d"])
    assert got.returncode == 0, got.output
    assert ran(root) == ["d"]
    assert json.loads((root / "total.json").read_text()) == ["A", "B", "C", "D"]

    # over a mapping, keyed as the list was: an element whose value changed runs again, the
    # others are reused (each element's value is part of its fingerprint, not its key alone)
    (root / "files.json").write_text(json.dumps({"a": "a", "b": "q", "c": "c", "d": "d"}))
    got = run()
    assert got.returncode == 0, got.output
    assert ran(root) == ["q"]
    assert json.loads((root / "total.json").read_text()) == {"a": "A", "b": "Q", "c": "C", "d": "D"}

    # a partial run from the map on: the list comes from the last run that made it
    got = run("--from", "each")
    assert got.returncode == 0, got.output
    assert "input files from run" in got.stderr and ran(root) == []

    # an element that fails stops the flow; resumed, only it runs again
    got = run(files=["a", "x", "b"])
    assert got.returncode == 1, got.output
    assert ran(root) == ["x"]
    assert "f.each.handle[x] FAILED" in got.stderr and "ValueError: cannot handle x" in got.stderr
    assert "f.each.handle[*]: 2 cached, 1 failed; its outputs were not collected" in got.stderr
    (root / "fixed").write_text("")
    got = run("--resume", "last")
    assert got.returncode == 0, got.output
    assert ran(root) == ["x"]
    assert json.loads((root / "total.json").read_text()) == ["A", "X", "B"]

    # more elements than max_map: a clear error, nothing of it runs
    got = run(files=["a", "b", "c", "d", "e", "f"])
    assert got.returncode == 1 and ran(root) == []
    assert "f.each.handle FAILED after 0 attempts (failed): MapError: map: files has 6 " in (
        got.stderr
    )
    assert "more than max_map (5); raise max_map on the entry" in got.stderr


@pytest.mark.parametrize("executor", ["serial", "dask"])
def test_a_map_under_other_executors(
    normandy: RunNormandy, project: Callable[[str], Path], executor_args, executor: str
) -> None:
    root = project(MAP.replace("cache: true", "cache: false"))
    (root / "files.json").write_text('["a", "b", "c"]')
    got = normandy("run", "--no-progress", "--project", str(root), *executor_args(executor))
    assert got.returncode == 0, got.output
    assert json.loads((root / "total.json").read_text()) == ["A", "B", "C"]
    assert "f.each.handle[*]: 3 done" in got.stderr


DATAFLOW = """
confs:
  workers: 3
  schedule: dataflow
  envs: {dev: }
flows:
  data:
    tags: [default]
    steps:
      first:
        quick: {process: nap, params: {sleep: 0.1}, outputs: x}
        slow: {process: nap, params: {sleep: 2.5}, outputs: y}
      second:
        after: {inputs: {x: x}, outputs: z}
  other:
    tags: [default]
    steps:
      only:
        nap: {params: {sleep: 0.5}}
  undeclared:
    steps:
      first:
        nap: {params: {sleep: 0}, outputs: secret}
      second:
        reads_by_name: {params: {name: secret}}
"""


def test_dataflow_starts_tasks_once_their_inputs_are_written_and_flows_side_by_side(
    normandy: RunNormandy, project: Callable[[str], Path]
) -> None:
    root = project(DATAFLOW)
    got = normandy("run", "--no-progress", "--project", str(root))
    assert got.returncode == 0, got.output
    tasks = {t["key"]: t for t in runs_json(normandy, root)["tasks"]}
    slow = tasks["data.first.slow"]
    assert tasks["data.second.after"]["ended"] < slow["ended"]  # not waiting for step 1's end
    assert tasks["other.only.nap"]["started"] < slow["ended"]  # beside flow data
    # a read the source does not show (a name in params): refused as it happens
    got = normandy("run", "--no-progress", "--flow", "undeclared", "--project", str(root))
    assert got.returncode == 1, got.output
    assert (
        "task undeclared.second.reads_by_name (process 'reads_by_name'): it read the variable "
        "'secret' through pipe.vars, which its entry does not declare" in got.stderr
    )
    assert "add it to the entry's inputs (inputs: [secret])" in got.stderr
    # with steps as barriers, the same flows take their time
    (root / "pipeline" / "pipeline_conf.yml").write_text(
        (root / "pipeline" / "pipeline_conf.yml").read_text().replace("dataflow", "steps")
    )
    got = normandy("run", "--no-progress", "--project", str(root))
    assert got.returncode == 0, got.output
    tasks = {t["key"]: t for t in runs_json(normandy, root)["tasks"]}
    assert tasks["data.second.after"]["started"] >= tasks["data.first.slow"]["ended"]
    assert tasks["other.only.nap"]["started"] >= tasks["data.second.after"]["ended"]


def test_a_map_over_values_holding_a_credential_names_its_elements_by_position(
    normandy: RunNormandy, project: Callable[[str], Path]
) -> None:
    """A task's name is shown and stored everywhere (progress, logs, history): a map over
    values holding a credential's value (SPEC 11) names its elements 0, 1… instead."""
    root = project(MAP.replace("envs: {dev: }", "envs: {dev: {credentials: conf/dev.yml}}"))
    (root / "conf").mkdir()
    (root / "conf" / "dev.yml").write_text("api: {token: tok-s3cr3t-42}\n")
    (root / "files.json").write_text(json.dumps(["public", "tok-s3cr3t-42"]))
    got = normandy("run", "--no-progress", "--project", str(root))
    assert got.returncode == 0, got.output
    assert json.loads((root / "total.json").read_text()) == ["PUBLIC", "TOK-S3CR3T-42"]
    history = runs_json(normandy, root)
    elements = [t["task"] for t in history["tasks"] if t["parent"] == "f.each.handle"]
    assert elements == ["handle[0]", "handle[1]"]
    logs = "".join(p.read_text() for p in (root / "logs").rglob("*.log"))
    names = " ".join(p.name for p in (root / "logs").rglob("*"))
    for shown in (got.output, json.dumps(history), logs, names):
        assert "s3cr3t" not in shown
