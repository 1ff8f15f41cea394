"""A run's recorded status is the truth (SPEC 8, issue 11): a run that ends early for any
reason is recorded *failed* (with the reason) or *interrupted*, never *succeeded*, and can
be resumed; two resumes of one run never overlap; a history locked by another program is
waited for, then explained; a param holding a credential is masked wherever Normandy
stores or shows it. Real commands, real SQLite, real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.cli.test_history import (
    ENV,
    HEAD,
    PROCS,
    TRACEBACK,
    db_rows,
    db_run,
    db_tasks,
    fix,
    ran,
    run_json,
    runs_json,
    start_run,
    wait_for,
)

BREAKER = """
import shutil
from pathlib import Path


def break_store(pipe):
    # what a full disk or a folder replaced under Normandy's feet does: the flow's
    # variables can no longer be committed
    if (pipe.path / "fixed-store").exists():
        return
    vars_dir = pipe.path / ".normandy" / "runs" / pipe.run_id / "vars"
    shutil.rmtree(vars_dir, ignore_errors=True)
    vars_dir.parent.mkdir(parents=True, exist_ok=True)
    vars_dir.write_text("not a folder")
"""

STORE_CONF = (
    HEAD.replace("plugins: [procs]", "plugins: [procs, breaker]")
    + """
  f:
    tags: [default]
    steps:
      s1: [a, break_store]
      s2: [c]
"""
)


def breaker_plugin() -> str:
    return BREAKER + textwrap.dedent(
        """
        from normandy_core import hookimpl


        @hookimpl
        def normandy_processes():
            return {"break_store": break_store}
        """
    )


def test_a_run_whose_store_breaks_is_recorded_failed_with_why_and_resumes(normandy, make_project):
    root = make_project(STORE_CONF, {"procs.py": PROCS, "breaker.py": breaker_plugin()})
    result = normandy("run", "--json", cwd=root, env=ENV)
    assert result.returncode == 1, result.output
    assert TRACEBACK not in result.output
    summary = json.loads(result.stdout)
    run_id = summary["run_id"]
    assert summary["status"] == "failed"
    assert "NotADirectoryError" in summary["reason"] and "vars" in summary["reason"]
    assert "normandy: the run ended early: NotADirectoryError" in result.stderr

    run = db_run(root, run_id)
    assert (run["status"], run["reason"]) == ("failed", summary["reason"])
    listed = runs_json(normandy, root)
    assert [(r["id"], r["status"], r["reason"]) for r in listed] == [
        (run_id, "failed", summary["reason"])
    ]
    shown = normandy("runs", run_id, cwd=root, env=ENV)
    assert f"ended early: {summary['reason']}" in shown.stdout
    report = normandy("report", run_id, "--output", str(root / "r.html"), cwd=root, env=ENV)
    assert report.returncode == 0, report.output
    assert "The run ended early: NotADirectoryError" in (root / "r.html").read_text()

    # fix the cause, then resume: what succeeded is not run again, the rest runs
    (root / ".normandy" / "runs" / run_id / "vars").unlink()
    fix(root, "store")
    resumed = run_json(normandy, root, "--resume", "last", code=0)
    assert resumed["status"] == "succeeded" and resumed["reason"] is None
    assert ran(root, "a") == [run_id]
    assert ran(root, "c") == [resumed["run_id"]]
    seen = json.loads((root / "out" / "seen-c.json").read_text())
    assert seen["vars"] == {"from_a": f"a of {run_id}"}


def test_a_store_that_is_a_file_is_a_configuration_error(normandy, make_project):
    conf = HEAD.replace("workers: 2", "workers: 2\n  store: data/store") + (
        "  f:\n    tags: [default]\n    steps:\n      s1: [a]\n"
    )
    root = make_project(conf, {"procs.py": PROCS, "data/store": "a file"})
    for command in ("validate", "run"):
        result = normandy(command, cwd=root, env=ENV)
        assert result.returncode == 2, result.output
        assert (
            "pipeline/pipeline_conf.yml:4:10: confs.store: the store 'data/store' "
            f"({root / 'data' / 'store'}) is a file, not a folder"
        ) in result.stderr
        assert TRACEBACK not in result.output
    assert not (root / ".normandy" / "history.sqlite").exists() or not db_rows(
        root, "SELECT id FROM runs"
    )


BROKEN_ENGINE = """
from normandy_core import hookimpl
from normandy_core.executors.serial import SerialExecutor


class Breaking(SerialExecutor):
    '''Runs one task, then breaks as a pool whose workers cannot be replaced does.'''

    calls = 0

    def submit(self, call, timeout=None):
        Breaking.calls += 1
        if Breaking.calls > 1:
            raise RuntimeError("the pool is not running")
        return super().submit(call, timeout)


@hookimpl
def normandy_executors():
    return {"breaking": Breaking}
"""


def test_a_broken_executor_fails_the_run_with_its_reason(normandy, make_project):
    conf = HEAD.replace("plugins: [procs]", "plugins: [procs, engine]") + (
        "  f:\n    tags: [default]\n    steps:\n      s1: [a]\n      s2: [c]\n"
    )
    root = make_project(conf, {"procs.py": PROCS, "engine.py": BROKEN_ENGINE})
    result = normandy("run", "--executor", "breaking", "--json", cwd=root, env=ENV)
    assert result.returncode == 1, result.output
    assert TRACEBACK not in result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "failed"
    assert summary["reason"] == (
        "ExecutorError: the executor 'breaking' cannot run f.s2.c: "
        "RuntimeError: the pool is not running"
    )
    run = db_run(root, summary["run_id"])
    assert run["status"] == "failed" and run["reason"] == summary["reason"]
    assert db_tasks(root, summary["run_id"])["f.s1.a"]["status"] == "succeeded"
    resumed = run_json(normandy, root, "--resume", "last", code=0)  # the local pool
    assert ran(root, "a") == [summary["run_id"]]
    assert ran(root, "c") == [resumed["run_id"]]


# -- two resumes of one run ------------------------------------------------------------------

RESUMABLE = (
    HEAD
    + """
  f:
    tags: [default]
    steps:
      s1: [a, b]
      s2: [sleepy]
"""
)


def test_a_run_is_resumed_once_at_a_time(normandy, make_project):
    root = make_project(RESUMABLE, {"procs.py": PROCS})
    failed = run_json(normandy, root, code=1)
    fix(root, "b")
    first = start_run(root, "--resume", failed["run_id"])
    try:
        wait_for(lambda: (root / "out" / "started-sleepy").exists(), "the first resume", proc=first)
        second = normandy("run", "--resume", failed["run_id"], cwd=root, env=ENV)
        assert second.returncode == 2, second.output
        assert TRACEBACK not in second.output
        assert f"run {failed['run_id']} is already being resumed by run " in second.stderr
        assert "wait for it to end" in second.stderr
        (root / "quick").write_text("")
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, err
    assert ran(root, "b") == [failed["run_id"], json.loads(out)["run_id"]]  # once by the resume
    # the refused resume left no run behind
    assert [r["resumed_from"] for r in db_rows(root, "SELECT resumed_from FROM runs")].count(
        failed["run_id"]
    ) == 1


# -- a history locked by another program ----------------------------------------------------

HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def hold_lock(root: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root / ".normandy" / "history.sqlite"), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_history_locked_for_too_long_is_a_clear_error(normandy, make_project):
    root = make_project(RESUMABLE, {"procs.py": PROCS})
    fix(root, "b")
    (root / "quick").write_text("")
    run_json(normandy, root, code=0)  # the history exists
    holder = hold_lock(root, 30)
    try:
        result = normandy("run", cwd=root, env={**ENV, "NORMANDY_HISTORY_TIMEOUT": "0.5"})
        reading = normandy("runs", cwd=root, env={**ENV, "NORMANDY_HISTORY_TIMEOUT": "0.5"})
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2, result.output
    assert TRACEBACK not in result.output
    assert "is locked by another program" in result.stderr
    assert "NORMANDY_HISTORY_TIMEOUT" in result.stderr
    assert not (root / "out" / "ran-a").read_text().count("\n") > 1  # nothing ran again
    assert reading.returncode == 0, reading.output  # readers are not blocked (WAL)


def test_a_history_locked_for_a_moment_is_waited_for(normandy, make_project):
    root = make_project(RESUMABLE, {"procs.py": PROCS})
    fix(root, "b")
    (root / "quick").write_text("")
    run_json(normandy, root, code=0)
    holder = hold_lock(root, 1.0)
    try:
        result = normandy("run", cwd=root, env={**ENV, "NORMANDY_HISTORY_TIMEOUT": "20"})
    finally:
        holder.wait()
    assert result.returncode == 0, result.output
    assert len(db_rows(root, "SELECT id FROM runs")) == 2


# -- a killed run's duration ----------------------------------------------------------------


def test_a_killed_run_lasts_until_its_last_sign_of_life(normandy, make_project):
    root = make_project(RESUMABLE, {"procs.py": PROCS})
    fix(root, "b")
    proc = start_run(root)
    try:
        wait_for(lambda: (root / "out" / "started-sleepy").exists(), "sleepy", proc=proc)
        started = time.time()
        time.sleep(6.5)  # more than the heartbeat's 5 s while the task runs, quiet
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        (root / "quick").write_text("")  # lets the orphaned task end, if any
        proc.communicate()
    [run] = runs_json(normandy, root)
    assert run["status"] == "interrupted"
    assert "ended without recording the run's end" in run["reason"]
    assert run["ended"] >= started + 4  # its heartbeat, not the start of its last task


# -- credentials used as params -------------------------------------------------------------

SECRET = "s3cr3t-Pa55word"

PARAMS_CONF = (
    HEAD.replace("dev: {}", "dev: {credentials: conf/dev.yml}")
    + """
  f:
    tags: [default]
    params: {dsn: "postgres://app:"""
    + SECRET
    + """@db/prod", plain: visible}
    steps:
      s1: [c]
      s2:
        c2: {iter_param: {name: who, values: [plain, """
    + SECRET
    + """]}}
"""
)


def test_a_param_holding_a_credential_is_masked_where_it_is_stored_or_shown(normandy, make_project):
    root = make_project(
        PARAMS_CONF, {"procs.py": PROCS, "conf/dev.yml": f"db:\n  password: {SECRET}\n"}
    )
    extra = ("--param", f"token={SECRET}")
    dry = normandy("run", "--dry-run", *extra, cwd=root, env=ENV)
    dry_json = normandy("run", "--dry-run", "--json", *extra, cwd=root, env=ENV)
    summary = run_json(normandy, root, *extra, code=0)
    shown = [
        dry.output,
        dry_json.output,
        json.dumps(summary),
        json.dumps(runs_json(normandy, root)),
        json.dumps(runs_json(normandy, root, "last")),
        normandy("runs", "last", cwd=root, env=ENV).output,
        normandy("graph", cwd=root, env=ENV).output,
    ]
    report = normandy("report", "--output", str(root / "r.html"), cwd=root, env=ENV)
    assert report.returncode == 0, report.output
    shown.append((root / "r.html").read_text())
    for text in shown:
        assert SECRET not in text
    # an iter_param value equal to a credential: the task is named masked, everywhere
    # (the dry run failed with a KeyError; the run showed its name in the clear)
    assert "    - c2[***]  params={" in dry.output
    assert [t["task"] for t in summary["tasks"]] == ["c", "c2[plain]", "c2[***]"]
    logs = [p.name for p in (root / "logs").rglob("*")]
    assert not any(SECRET in name for name in logs) and len(logs) == 6, logs
    assert "postgres://app:***@db/prod" in dry.output
    assert '"token": "***"' in dry_json.stdout
    assert (root / ".normandy" / "history.sqlite").read_bytes().find(SECRET.encode()) == -1
    assert "visible" in dry.output
    # the process itself still gets the real value
    seen = json.loads((root / "out" / "seen-c.json").read_text())
    assert seen["params"]["dsn"] == f"postgres://app:{SECRET}@db/prod"
    assert seen["params"]["token"] == SECRET
