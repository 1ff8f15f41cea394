"""Keeping the store bounded (SPEC 13): what ``normandy gc`` and ``confs.keep_runs`` prune,
on a real history and real folders. Never deleted: the runs kept, what they use (followed
to the end), a run still going."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from pathlib import Path

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
