"""Reusing work (SPEC 13), end to end with the real command: a task whose fingerprint is
unchanged is not run and its variables are bound without a copy; every way an input, the
code or a setting can change reruns what it touches and what reads what that writes (a
stale result served is the worst bug this project can have); --explain says why; partial
runs take their inputs from earlier runs; gc keeps the store bounded."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from normandy_core import VariableNotFoundError, load

PROCS = '''
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _ran(name):
    with open(HERE / f"ran-{name}", "a") as out:
        out.write("x\\n")


def raw(params):
    _ran("raw")
    return list(range(params.get("n", 5)))


def double(raw):
    _ran("double")
    return [2 * x for x in raw]


def total(double, pipe):
    _ran("total")
    return sum(double) + pipe.confs.get("offset", 0)


def legacy(pipe):
    """Reads through pipe.vars, declares nothing: its reads are known from what it did."""
    _ran("legacy")
    pipe.vars["legacy_out"] = len(pipe.vars["double"]) + len(pipe.credentials.get("token", ""))


def report(total, legacy_out):
    _ran("report")
    (HERE / "report.txt").write_text(f"{total} {legacy_out}")
'''

CONF = """
confs:
  cache: true
  processes:
    raw: "procs:raw"
    double: "procs:double"
    total: "procs:total"
    legacy: "procs:legacy"
    report: "procs:report"
  envs:
    dev: {credentials: conf/dev.yml, offset: 0}
flows:
  f:
    tags: [default]
    steps:
      one:
        raw: {outputs: raw, params: {n: 5}}
      two:
        double: {outputs: double}
      three:
        total: {outputs: total}
        legacy: {outputs: legacy_out}
      four:
        report:
"""

ENV = {"NO_COLOR": "1", "COLUMNS": "250"}
TASKS = ("raw", "double", "total", "legacy", "report")


@pytest.fixture
def project(make_project):
    def make(conf: str = CONF) -> Path:
        return make_project(conf, {"procs.py": PROCS, "conf/dev.yml": "token: abc\n"})

    return make


def runs_of(root: Path) -> dict[str, int]:
    return {
        t: len((root / f"ran-{t}").read_text().split()) if (root / f"ran-{t}").exists() else 0
        for t in TASKS
    }


def run(normandy, root: Path, *args: str, code: int = 0) -> dict[str, Any]:
    result = normandy("run", "--json", "--explain", *args, cwd=root, env=ENV)
    assert result.returncode == code, result.output
    summary = json.loads(result.stdout)
    summary["explained"] = dict(re.findall(r"explain: f\.\w+\.(\w+): (.*)", result.stderr))
    return summary


def statuses(summary: dict[str, Any]) -> dict[str, str]:
    return {t["task"]: t["status"] for t in summary["tasks"]}


def test_nothing_changed_nothing_runs(normandy, project):
    root = project()
    first = run(normandy, root)
    assert runs_of(root) == dict.fromkeys(TASKS, 1)
    second = run(normandy, root)
    assert statuses(second) == dict.fromkeys(TASKS, "cached")
    assert runs_of(root) == dict.fromkeys(TASKS, 1)
    assert second["explained"] == {t: f"reuse {first['run_id']}" for t in TASKS}
    # bound, not copied: the same file
    store = root / ".normandy" / "runs"
    a = store / first["run_id"] / "vars" / "f" / "double.nv"
    b = store / second["run_id"] / "vars" / "f" / "double.nv"
    assert os.stat(a).st_ino == os.stat(b).st_ino
    # where people look: cached (from RUN_ID)
    shown = normandy("runs", second["run_id"], cwd=root, env=ENV).stdout
    assert f"cached (from {first['run_id']})" in shown
    listed = json.loads(normandy("runs", second["run_id"], "--json", cwd=root).stdout)
    assert {t["cached_from"] for t in listed["tasks"]} == {first["run_id"]}
    assert {t["reason"] for t in listed["tasks"]} == {f"reuse {first['run_id']}"}
    report = normandy("report", "--output", str(root / "r.html"), cwd=root, env=ENV)
    assert report.returncode == 0
    assert f"cached (from {first['run_id']})" in (root / "r.html").read_text()
    # logged in run.log and the flow's file; no file of its own: it did not run (its log
    # is the first run's), and a step of 2,000 reused tasks made 2,000 files of a line
    logs = root / "logs" / second["run_id"]
    line = f"f.two.double | cached (from {first['run_id']}): nothing it depends on changed"
    for name in ("run.log", "flow-f.log"):
        assert line in (logs / name).read_text()
    assert sorted(p.name for p in logs.glob("process-*.log")) == []
    assert (root / "logs" / first["run_id"] / "process-f.two.double.log").is_file()


def edit(root: Path, old: str, new: str, file: str = "procs.py") -> None:
    """An edit as a person makes it, seconds after the run: Python trusts a module's
    bytecode while its source keeps its size and modification second, and these edits
    keep the size (see docs/guide/reuse.md)."""
    path = root / file
    text = path.read_text()
    assert old in text, old
    before = path.stat().st_mtime
    path.write_text(text.replace(old, new))
    os.utime(path, (before + 2, before + 2))


def test_a_code_change_reruns_the_task_and_what_reads_its_changed_output(normandy, project):
    root = project()
    run(normandy, root)
    edit(root, "return [2 * x for x in raw]", "return [3 * x for x in raw]")
    second = run(normandy, root)
    assert second["explained"]["double"] == "run (code changed (procs))"
    assert second["explained"]["raw"].startswith("reuse")
    assert second["explained"]["total"] == "run (input changed (double))"
    assert second["explained"]["legacy"] == "run (input changed (double))"  # read via pipe.vars
    assert second["explained"]["report"] == "run (input changed (total))"
    assert (root / "report.txt").read_text() == "30 8"
    assert runs_of(root) == {"raw": 1, "double": 2, "total": 2, "legacy": 2, "report": 2}


def test_an_edit_that_changes_no_output_stops_there(normandy, project):
    root = project()
    run(normandy, root)
    edit(root, "return [2 * x for x in raw]", "return [x * 2 for x in raw]  # same result")
    second = run(normandy, root)
    assert statuses(second) == {
        "raw": "cached",
        "double": "succeeded",
        "total": "cached",
        "legacy": "cached",
        "report": "cached",
    }


def test_a_helper_change_reruns_every_process_of_its_module(normandy, project):
    root = project()
    run(normandy, root)
    edit(root, 'out.write("x\\n")', 'out.write("x" + "\\n")')
    second = run(normandy, root)
    assert set(statuses(second).values()) == {"succeeded"}
    assert second["explained"]["raw"] == "run (code changed (procs))"


def test_a_change_in_a_project_module_it_imports(normandy, make_project):
    procs = PROCS.replace("    return [2 * x for x in raw]", "    return [scale(x) for x in raw]")
    root = make_project(
        CONF,
        {
            "procs.py": "from helpers import scale\n" + procs,
            "helpers.py": "def scale(x):\n    return 2 * x\n",
            "conf/dev.yml": "token: abc\n",
        },
    )
    run(normandy, root)
    edit(root, "return 2 * x", "return 4 * x", "helpers.py")
    second = run(normandy, root)
    assert second["explained"]["double"] == "run (code changed (helpers))"
    # total's code does not use helpers: it runs because double's output changed
    assert second["explained"]["total"] == "run (input changed (double))"
    assert (root / "report.txt").read_text() == "40 8"


def test_a_param_change(normandy, project):
    root = project()
    first = run(normandy, root)
    edit(root, "params: {n: 5}", "params: {n: 6}", "pipeline/pipeline_conf.yml")
    second = run(normandy, root)
    assert second["explained"]["raw"] == "run (params changed (n: 5 → 6))"
    assert statuses(second)["report"] == "succeeded"
    # from the command line too, and back: the first run's successes are still there
    # (--param gives every task the param; only raw reads it)
    third = run(normandy, root, "--param", "n=5")
    assert third["explained"]["raw"] == f"reuse {first['run_id']}"
    assert statuses(third) == dict.fromkeys(TASKS, "cached")
    edit(root, "params: {n: 6}", "params: {n: 5}", "pipeline/pipeline_conf.yml")
    fourth = run(normandy, root)
    assert statuses(fourth) == dict.fromkeys(TASKS, "cached")


def test_an_env_setting_or_a_credential_change(normandy, project):
    root = project()
    run(normandy, root)
    edit(root, "offset: 0}", "offset: 1}", "pipeline/pipeline_conf.yml")
    second = run(normandy, root)
    assert second["explained"]["raw"] == "run (env changed)"  # every task sees the env
    (root / "conf" / "dev.yml").write_text("token: abcd\n")
    third = run(normandy, root)
    assert third["explained"]["legacy"] == "run (env changed (credentials))"
    assert (root / "report.txt").read_text() == "21 9"
    listed = normandy("runs", third["run_id"], "--json", cwd=root).stdout
    assert "abcd" not in listed  # the credential's hash, never its value


def test_a_failure_is_never_served_and_a_missing_variable_reruns_its_producer(normandy, project):
    root = project()
    edit(root, "return sum(double)", "raise RuntimeError('not yet')  # return sum(double)")
    failed = run(normandy, root, code=1)
    assert statuses(failed)["total"] == "failed"
    edit(root, "raise RuntimeError('not yet')  # return sum(double)", "return sum(double)")
    fixed = run(normandy, root)
    assert fixed["explained"]["total"] == "run (no earlier success)"  # never the failure
    assert statuses(fixed)["raw"] == "cached"
    # a variable removed from the store (from every run that binds it, by a hard link
    # that keeps it while one of them has it): its producer runs again, not fails later
    bound = list((root / ".normandy" / "runs").glob("*/vars/f/raw.nv"))
    assert len(bound) == 2
    for path in bound:
        path.unlink()
    again = run(normandy, root)
    assert statuses(again)["raw"] == "succeeded"
    assert "no longer stored" in again["explained"]["raw"]
    assert statuses(again)["double"] == "cached"  # raw came out the same


def test_no_cache_rerun_and_cache_off(normandy, project):
    root = project()
    first = run(normandy, root)
    forced = run(normandy, root, "--no-cache")
    assert set(statuses(forced).values()) == {"succeeded"}
    assert set(forced["explained"].values()) == {"run (cache off)"}
    # fingerprints are still recorded: the next run reuses the forced one
    after = run(normandy, root)
    assert set(after["explained"].values()) == {f"reuse {forced['run_id']}"}
    picked = run(normandy, root, "--rerun", "two.double", "--rerun", "f.four.*")
    assert picked["explained"]["double"] == "run (rerun requested)"
    assert picked["explained"]["report"] == "run (rerun requested)"
    assert statuses(picked)["total"] == "cached"
    edit(root, "  cache: true\n", "", "pipeline/pipeline_conf.yml")
    plain = run(normandy, root)
    assert set(plain["explained"].values()) == {"run (cache off)"}
    assert first["run_id"] != plain["run_id"]


def test_dry_run_explain(normandy, project):
    root = project()
    run(normandy, root)
    edit(root, "return [2 * x for x in raw]", "return [3 * x for x in raw]")
    result = normandy("run", "--dry-run", "--explain", cwd=root, env=ENV)
    assert result.returncode == 0, result.output
    assert "f.two.double: run (code changed (procs))" in result.stderr
    assert re.search(r"f\.one\.raw: reuse \d{8}-", result.stderr)
    assert (
        "f.three.total: run or reuse: reads double, which f.two.double writes in this run"
    ) in result.stderr
    assert runs_of(root)["double"] == 1  # nothing ran


# -- part of a flow -------------------------------------------------------------------------


def test_a_partial_run_reads_its_inputs_from_the_latest_run_that_made_them(normandy, project):
    root = project(CONF.replace("  cache: true\n", ""))
    refused = normandy("run", "--from", "three", cwd=root, env=ENV)
    assert refused.returncode == 2, refused.output
    assert "f.three.total reads 'double', made by f.two.double, which does not run" in (
        refused.stderr
    )
    first = run(normandy, root)
    part = normandy("run", "--json", "--from", "three", cwd=root, env=ENV)
    assert part.returncode == 0, part.output
    assert f"input double from run {first['run_id']} (made by f.two.double)" in part.stderr
    # raw is bound too (for an undeclared pipe.vars read), but none of these tasks reads it
    assert "input raw from run" not in part.stderr
    assert [t["task"] for t in json.loads(part.stdout)["tasks"]] == ["total", "legacy", "report"]
    assert runs_of(root) == {"raw": 1, "double": 1, "total": 2, "legacy": 2, "report": 2}
    only = normandy("run", "--only", "two.double", cwd=root, env=ENV)
    assert only.returncode == 0, only.output
    # the part is the run's selection, shown as given (it read `tags default`), and resumed
    listed = normandy("runs", cwd=root, env=ENV).stdout.splitlines()
    assert "tags default; --only two.double " in listed[2]
    assert "tags default; --from three " in listed[3]
    resumed = normandy("run", "--json", "--resume", "last", cwd=root, env=ENV)
    assert [t["task"] for t in json.loads(resumed.stdout)["tasks"]] == ["double"]
    up_to = normandy("run", "--json", "--to", "two", cwd=root, env=ENV)
    assert [t["task"] for t in json.loads(up_to.stdout)["tasks"]] == ["raw", "double"]
    nothing = normandy("run", "--only", "nine", cwd=root, env=ENV)
    assert nothing.returncode == 2 and "--only 'nine' names no task" in nothing.stderr
    rerun = normandy("run", "--rerun", "nomatch", cwd=root, env=ENV)  # was accepted silently
    assert rerun.returncode == 2, rerun.output
    assert "--rerun 'nomatch' names no task of the flows selected" in rerun.stderr


# -- keeping the store bounded --------------------------------------------------------------


def test_gc_keeps_what_kept_runs_reuse(normandy, project):
    root = project()
    first = run(normandy, root)["run_id"]  # everything later reuses its variables
    edit(root, "params: {n: 5}", "params: {n: 6}", "pipeline/pipeline_conf.yml")
    middle = run(normandy, root)["run_id"]
    edit(root, "params: {n: 6}", "params: {n: 5}", "pipeline/pipeline_conf.yml")
    last = run(normandy, root)["run_id"]  # all cached, from the first
    dry = normandy("gc", "--keep", "1", "--dry-run", cwd=root, env=ENV)
    assert dry.returncode == 0, dry.output
    assert dry.stdout.split() == [middle]
    assert "would prune 1 run" in dry.stderr
    gone = normandy("gc", "--keep", "1", cwd=root, env=ENV)
    assert gone.stdout.split() == [middle] and "pruned 1 run" in gone.stderr
    assert not (root / ".normandy" / "runs" / middle).exists()
    assert not (root / "logs" / middle).exists()
    assert (root / ".normandy" / "runs" / first).exists()  # the kept run uses it
    listed = json.loads(normandy("runs", "--json", cwd=root).stdout)
    assert {r["id"]: r["pruned"] is not None for r in listed} == {
        last: False,
        middle: True,
        first: False,
    }
    text = normandy("runs", cwd=root, env=ENV).stdout
    assert re.search(rf"{middle} .*\bpruned$", text, re.M)
    pruned = normandy("vars", middle, cwd=root, env=ENV)  # said "No variable is stored"
    assert pruned.returncode == 2
    assert f"run {middle} was pruned on " in pruned.stderr
    with pytest.raises(VariableNotFoundError, match=f"run {middle} was pruned on "):
        load("raw", run=middle, project=root)  # said "has no variable 'raw'"
    assert load("raw", project=root) == [0, 1, 2, 3, 4]  # the last run's, still stored
    # the last run's variables were all reused: described by the run that made them
    shown = json.loads(normandy("vars", last, "--json", cwd=root, env=ENV).stdout)
    assert {v["name"]: (v["task"], v["cached_from"]) for v in shown} == {
        "raw": ("f.one.raw", first),
        "double": ("f.two.double", first),
        "total": ("f.three.total", first),
        "legacy_out": ("f.three.legacy", first),
    }
    assert all(v["type"] and v["size"] for v in shown)
    table = normandy("vars", last, cwd=root, env=ENV).stdout
    assert "builtins.list  " in table and f"f.one.raw (cached from {first})" in table
    assert statuses(run(normandy, root)) == dict.fromkeys(TASKS, "cached")


def test_keep_runs_prunes_after_every_run(normandy, project):
    root = project(CONF.replace("  cache: true\n", "  keep_runs: 2\n"))
    ids = [run(normandy, root)["run_id"] for _ in range(4)]
    kept = sorted(p.name for p in (root / ".normandy" / "runs").iterdir())
    assert kept == sorted(ids[-2:])
    assert sorted(p.name for p in (root / "logs").iterdir()) == sorted(ids[-2:])


def test_a_partial_runs_input_says_when_its_producer_changed_since(normandy, project):
    root = project(CONF.replace("  cache: true\n", ""))
    first = run(normandy, root)
    edit(root, "return [2 * x for x in raw]", "return [3 * x for x in raw]")
    part = normandy("run", "--from", "three", cwd=root, env=ENV)
    assert part.returncode == 0, part.output
    assert f"input double from run {first['run_id']}, made before f.two.double's code changed" in (
        part.stderr
    )
    edit(root, "params: {n: 5}", "params: {n: 6}", "pipeline/pipeline_conf.yml")
    edit(root, "return [3 * x for x in raw]", "return [2 * x for x in raw]")
    part = normandy("run", "--from", "three", cwd=root, env=ENV)
    assert part.returncode == 0, part.output
    assert f"input double from run {first['run_id']}, made before f.two.double's inputs " in (
        part.stderr
    )


DISTS = """
import importlib.metadata


def installed():
    return sorted(d.metadata["Name"] for d in importlib.metadata.distributions())
"""


def test_a_task_looking_for_distributions_reruns_for_a_new_one_not_for_other_files(
    normandy, make_project
):
    """``importlib.metadata`` lists every folder of ``sys.path`` (the project's own among
    them) to find distributions: a file written in the project reruns nothing, a new
    distribution there reruns the task that looked."""
    conf = """
    confs:
      cache: true
      processes: {installed: "dists:installed"}
      envs: {dev: {}}
    flows:
      f:
        tags: [default]
        steps:
          look:
            installed: {outputs: names}
    """
    root = make_project(conf, {"dists.py": DISTS})
    assert statuses(run(normandy, root)) == {"installed": "succeeded"}
    (root / "out").mkdir()
    (root / "out" / "report.txt").write_text("written by a run")
    again = run(normandy, root)
    assert statuses(again) == {"installed": "cached"}, again["explained"]
    info = root / "extra_dist-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-dist\nVersion: 1.0\n")
    third = run(normandy, root)
    assert statuses(third) == {"installed": "succeeded"}
    assert third["explained"]["installed"] == "run (folder changed (*.dist-info))"
