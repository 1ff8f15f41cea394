"""Keeping the store bounded (SPEC 13): what ``normandy gc`` and ``confs.keep_runs`` prune,
on a real history and real folders. Never deleted: the runs kept, what they use (followed
to the end), a run still going."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from normandy_core.history import History
from normandy_core.retention import collect, run_sizes
from tests.core.test_history_db import run_info, task_rows


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return tmp_path


def make_runs(root: Path, ids: list[str], *, running: str | None = None) -> History:
    """Runs ``ids``, oldest first, a day apart, each with a variable file and a log."""
    history = History(root / ".normandy")
    start = time.time() - 86400 * len(ids)
    for i, run_id in enumerate(ids):
        history.start_run(run_info(run_id, start + 86400 * i), task_rows())
        if run_id != running:
            history.end_run(run_id, "succeeded", ended=start + 86400 * i + 1)
        folder = root / ".normandy" / "runs" / run_id / "vars" / "f"
        folder.mkdir(parents=True)
        (folder / "x.nv").write_bytes(b"v" * 1000)
        (root / "logs" / run_id).mkdir(parents=True)
        (root / "logs" / run_id / "run.log").write_bytes(b"l" * 100)
    return history


def stored(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".normandy" / "runs").iterdir())


def test_the_latest_runs_and_what_they_use_are_kept(project: Path) -> None:
    history = make_runs(project, ["r1", "r2", "r3", "r4", "r5"])
    history.uses("r5", ["r3"])  # r5 reused a task of r3, which had reused one of r1
    history.uses("r3", ["r1"])
    history.close()
    dry = collect(project, None, keep=1, dry_run=True)
    assert dry.runs == ["r4", "r2"] and dry.freed == 2 * 1100
    assert stored(project) == ["r1", "r2", "r3", "r4", "r5"]  # a dry run deletes nothing
    done = collect(project, None, keep=1)
    assert done.runs == ["r4", "r2"] and done.describe() == "pruned 2 runs, 2.1 KiB freed"
    assert stored(project) == ["r1", "r3", "r5"]
    assert sorted(p.name for p in (project / "logs").iterdir()) == ["r1", "r3", "r5"]
    history = History(project / ".normandy")
    try:
        marked = {r.id: r.pruned is not None for r in history.runs()}
    finally:
        history.close()
    assert marked == {"r1": False, "r2": True, "r3": False, "r4": True, "r5": False}
    assert collect(project, None, keep=1).runs == []  # pruned once


def test_a_run_still_going_is_never_pruned(project: Path) -> None:
    make_runs(project, ["r1", "r2", "r3"], running="r1").close()
    assert collect(project, None, keep=1).runs == ["r2"]


def test_pruning_reads_no_run_s_plan(project: Path) -> None:
    """Every run's end prunes (``keep_runs``): it read every recorded run whole, twice,
    plans and all (178 KB a run of 1,000 tasks; a cron job's history holds thousands).
    It now reads each run's id, status and start: a plan it cannot parse is no matter."""
    import sqlite3

    make_runs(project, ["r1", "r2", "r3"]).close()
    with sqlite3.connect(project / ".normandy" / "history.sqlite") as db:
        db.execute("UPDATE runs SET plan = '{not json', params = '{not json'")
    db.close()
    assert collect(project, None, keep=1).runs == ["r2", "r1"]
    assert stored(project) == ["r3"]


def test_older_than_prunes_only_old_runs_beyond_those_kept(project: Path) -> None:
    make_runs(project, ["r1", "r2", "r3", "r4"]).close()  # 4, 3, 2 and 1 days old
    assert collect(project, None, keep=1, older_than=2.5).runs == ["r2", "r1"]


def test_a_variable_shared_by_a_hard_link_frees_nothing_until_its_last_run_goes(
    project: Path,
) -> None:
    make_runs(project, ["r1", "r2"]).close()
    runs = project / ".normandy" / "runs"
    os.unlink(runs / "r2" / "vars" / "f" / "x.nv")
    os.link(runs / "r1" / "vars" / "f" / "x.nv", runs / "r2" / "vars" / "f" / "x.nv")
    assert run_sizes(project, None, ["r1", "r2"]) == {"r1": 100, "r2": 100}
    assert collect(project, None, keep=1, dry_run=True).freed == 100


@pytest.mark.parametrize(("setting", "pruned"), [(None, ["r01"]), ("0", [])])
def test_a_run_keeps_the_last_20_runs_unless_told_otherwise(
    project: Path, module_name: Callable[[str], str], setting: str | None, pruned: list[str]
) -> None:
    """SPEC 20: without ``confs.keep_runs`` the store keeps the last 20 runs (it grew
    100 MiB a run in issue 26); ``keep_runs: 0`` keeps them all. Applied by the run
    itself (``run_plan``), with or without the command line."""
    from normandy_core.execution import RunOptions, run_plan
    from normandy_core.plan import Selection, build_plan
    from normandy_core.project import check_project, open_project

    module = module_name("noop")
    (project / f"{module}.py").write_text("def noop():\n    return 1\n")
    keep = f"  keep_runs: {setting}\n" if setting is not None else ""
    (project / "pipeline").mkdir()
    (project / "pipeline" / "pipeline_conf.yml").write_text(
        f"confs:\n  processes: {{noop: '{module}:noop'}}\n{keep}  envs: {{dev: }}\n"
        "flows:\n  f: {tags: [default], steps: {s: [noop]}}\n"
    )
    make_runs(project, [f"r{i:02d}" for i in range(1, 21)]).close()  # 20 earlier runs
    proj = open_project(project)
    checked = check_project(proj, executor="serial")
    plan = build_plan(proj.config, Selection())
    summary = run_plan(proj, plan, checked, RunOptions(executor="serial", console=io.StringIO()))
    assert summary.status == "succeeded"
    collected = summary.collected  # 21 runs now: the oldest goes, but with keep_runs: 0
    assert (collected.runs if collected is not None else []) == pruned
    earlier = [f"r{i:02d}" for i in range(1, 21)]
    assert [r for r in stored(project) if r in earlier] == [r for r in earlier if r not in pruned]


# -- gc while a run binds reused results -------------------------------------------------------
# The race of issue 20: ``gc --keep 1`` pruned the run whose variables a running run was
# binding. Both sides here are real processes on a real history and store: a run that
# reuses a task of an earlier run (as the orchestrator does: deciding, binding, its history
# written in a batch) and ``collect``.

RACE_PROCS = "def make():\n    return list(range(1000))\n"
RACE_CONF = """
confs:
  cache: true
  processes: {make: "race:make"}
  envs: {dev: {}}
flows:
  f:
    tags: [default]
    steps:
      s:
        make: {outputs: made}
"""


@pytest.fixture
def reused_run(make_project, normandy) -> tuple[Path, str]:
    """A project whose one run (its id returned) made a variable a later run may reuse."""
    root = make_project(RACE_CONF, {"race.py": RACE_PROCS})
    result = normandy("run", "--json", cwd=root)
    assert result.returncode == 0, result.output
    import json

    return root, json.loads(result.stdout)["run_id"]


def _binder(root: Path, run_id: str, ready: Any, go: Any, out: Any) -> None:
    """A run that reuses ``f.s.make``: decided and bound inside the history's batch, as the
    orchestrator does; told to finish once ``go`` is set. Puts what it did on ``out``."""
    from normandy_core.execution._reuse import Reuse
    from normandy_core.execution._variables import RunVariables
    from normandy_core.history import History, RunStart
    from normandy_core.plan import Selection
    from normandy_core.prepare import prepare_run
    from normandy_core.project import open_project
    from normandy_core.store import store_root

    try:
        project = open_project(root)
        prepared = prepare_run(project, Selection((), (), {}))
        store = store_root(root, None)
        history = History(root / ".normandy")
        history.start_run(
            RunStart(run_id, time.time(), (), (), {}, "dev", "local", 1, "x", "0", []), []
        )
        variables = RunVariables(store / "runs" / run_id)
        reuse = Reuse(history, store, variables, prepared.checked, project.registry, ())
        reuse.recording = run_id
        [task] = prepared.plan.tasks()
        with history.batch():
            decision = reuse.decide(task)
            if decision.reused:
                reuse.bind(decision)
            ready.set()
            go.wait(20)
        variables.step_ended([task] if decision.reused else [])
        source = decision.success.run_id if decision.success else None
        history.end_run(run_id, "succeeded")
        history.close()
        out.put(("ok", source, decision.reason))
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        ready.set()
        out.put(("error", None, f"{type(exc).__name__}: {exc}"))


def _start_binder(root: Path, run_id: str) -> tuple[Any, Any, Any, Any]:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    ready, go, out = ctx.Event(), ctx.Event(), ctx.Queue()
    process = ctx.Process(target=_binder, args=(root, run_id, ready, go, out))
    process.start()
    return process, ready, go, out


def _pruned(root: Path, run_id: str) -> bool:
    history = History(root / ".normandy")
    try:
        return history.get(run_id).pruned is not None
    finally:
        history.close()


def test_gc_never_prunes_a_run_that_a_running_run_binds_from(reused_run) -> None:
    root, source = reused_run
    process, ready, go, out = _start_binder(root, "29990101-000000.000-aaaa")
    try:
        assert ready.wait(60), "the binding run did not get there"
        collected = collect(root, None, keep=1)  # the binder's run is the latest: kept
        go.set()
        status, bound_from, reason = out.get(timeout=60)
    finally:
        go.set()
        process.join(30)
    assert status == "ok", reason
    assert bound_from == source, reason
    assert source not in collected.runs
    assert not _pruned(root, source)
    assert (root / ".normandy" / "runs" / source / "vars" / "f" / "made.nv").exists()


def test_a_run_never_binds_from_a_run_that_gc_pruned(reused_run) -> None:
    root, source = reused_run
    history = History(root / ".normandy")
    history.start_run(run_info("29990101-000000.000-bbbb", time.time()), task_rows())
    history.end_run("29990101-000000.000-bbbb", "succeeded")
    history.close()
    assert collect(root, None, keep=1).runs == [source]
    process, ready, go, out = _start_binder(root, "29990101-000000.000-cccc")
    go.set()
    try:
        status, bound_from, reason = out.get(timeout=60)
    finally:
        process.join(30)
    assert status == "ok", reason
    assert bound_from is None and reason == "no earlier success", reason


def test_gc_and_binding_runs_racing_for_a_while(reused_run) -> None:
    """Free running, for a bounded time: every run that bound a variable finds its source
    unpruned, whatever gc did meanwhile."""
    import multiprocessing

    root, source = reused_run
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()

    def gc_loop() -> None:
        while not stop.is_set():
            collect(root, None, keep=1)

    gc = ctx.Process(target=gc_loop)
    gc.start()
    problems = []
    try:
        deadline = time.monotonic() + 4.0
        i = 0
        while time.monotonic() < deadline:
            i += 1
            process, ready, go, out = _start_binder(root, f"29990101-000000.{i:03d}-dddd")
            go.set()
            status, bound_from, reason = out.get(timeout=60)
            process.join(30)
            if status != "ok":
                problems.append(reason)
            elif bound_from is not None and _pruned(root, bound_from):
                newer = History(root / ".normandy")
                try:
                    latest = newer.runs(1)[0].id
                finally:
                    newer.close()
                if latest == f"29990101-000000.{i:03d}-dddd":
                    problems.append(f"run {latest} bound from {bound_from}, which gc pruned")
    finally:
        stop.set()
        gc.join(30)
    assert problems == []
