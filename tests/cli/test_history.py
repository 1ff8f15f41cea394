"""The run history (SPEC 8): every run and task in ``<project>/.normandy/history.sqlite``,
``normandy runs [RUN_ID]`` and ``normandy run --resume RUN_ID|last``, end to end.

Real commands in subprocesses, real SQLite, real signals; nothing is mocked. The database is
checked twice: opened with :mod:`sqlite3` here, and through ``normandy runs ... --json``.
Processes live in a project-local plugin module ``procs.py`` and report what they did as
files under ``<project>/out/`` (one line per execution in ``ran-<task>``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from ruamel.yaml import YAML

from normandy_core import __version__
from normandy_core.config import read_config
from normandy_core.plan import Selection, build_plan
from tests.conftest import normandy_command

EXECUTORS = ["local", "serial", "dask"]
"""Every built-in executor (dask: on the module's cluster, see conftest)."""

PROCS = """
import json
import os
import time

from normandy_core import hookimpl


def _out(pipe, name):
    folder = pipe.path / "out"
    folder.mkdir(exist_ok=True)
    return folder / name


def _ran(pipe):
    with open(_out(pipe, f"ran-{pipe.task}"), "a") as out:
        out.write(f"{pipe.run_id} {os.getpid()}\\n")
    _out(pipe, f"pid-{pipe.task}").write_text(str(os.getpid()))


def produce(pipe):
    _ran(pipe)
    pipe.vars[f"from_{pipe.task}"] = f"{pipe.task} of {pipe.run_id}"


def gated(pipe):
    _ran(pipe)
    if not (pipe.path / f"fixed-{pipe.task}").exists():
        raise RuntimeError(f"{pipe.task} is not fixed yet")
    pipe.vars[f"from_{pipe.task}"] = f"{pipe.task} of {pipe.run_id}"


def consume(pipe, params):
    _ran(pipe)
    _out(pipe, f"seen-{pipe.task}.json").write_text(json.dumps({
        "vars": {name: pipe.vars.get(name) for name in pipe.vars.keys()},
        "env": pipe.env,
        "params": params,
        "param_types": {k: type(v).__name__ for k, v in params.items()},
        "tags": list(pipe.tags),
        "run_id": pipe.run_id,
    }, default=repr))


def sleepy(pipe):
    _ran(pipe)
    _out(pipe, f"started-{pipe.task}").write_text(pipe.run_id)
    deadline = time.time() + 60
    while time.time() < deadline and not (pipe.path / "quick").exists():
        time.sleep(0.05)
    pipe.vars[f"from_{pipe.task}"] = f"{pipe.task} of {pipe.run_id}"


def leak(pipe, log):
    password = pipe.credentials["db"]["password"]
    token = pipe.credentials["token"]
    _ran(pipe)
    log.info("connecting with %s", password)
    log.warning(f"token is {token}")
    print("password:", password, "token:", token)
    try:
        raise KeyError(password)
    except KeyError:
        log.exception("lookup failed")
    raise RuntimeError(f"cannot connect with {password} and {token}")


def quiet_leak(pipe, log):
    _ran(pipe)
    log.info("the password is %s", pipe.credentials["db"]["password"])
    print(pipe.credentials)


@hookimpl
def normandy_processes():
    return {
        "a": produce, "a2": produce, "d": produce,
        "b": gated, "b2": gated,
        "c": consume, "c2": consume,
        "sleepy": sleepy,
        "leak": leak, "quiet_leak": quiet_leak,
    }
"""

HEAD = """
confs:
  plugins: [procs]
  workers: 2
  envs:
    dev: {}
    prod: {}
flows:
"""

# step 1: a succeeds and writes from_a, b fails until out/../fixed-b exists; step 2: c reads
FAILING = (
    HEAD
    + """
  f:
    tags: [default, x]
    steps:
      s1:
        a:
        b: {retries: 1}
      s2: [c]
"""
)

ENV = {"NO_COLOR": "1", "COLUMNS": "250"}
TRACEBACK = "Traceback (most recent call last)"


@pytest.fixture
def project(make_project):
    def make(conf: str = FAILING, files: dict[str, str] | None = None) -> Path:
        return make_project(conf, {"procs.py": PROCS, **(files or {})})

    return make


# -- helpers --------------------------------------------------------------------------------


def ran(root: Path, task: str) -> list[str]:
    """The run ids in which ``task`` executed, one per execution."""
    path = root / "out" / f"ran-{task}"
    return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []


def seen(root: Path, task: str = "c") -> dict[str, Any]:
    return json.loads((root / "out" / f"seen-{task}.json").read_text())


def fix(root: Path, task: str) -> None:
    (root / f"fixed-{task}").write_text("")


def runs_json(normandy, root: Path, *args: str) -> Any:
    result = normandy("runs", *args, "--json", cwd=root, env=ENV)
    assert result.returncode == 0, result.output
    assert TRACEBACK not in result.stderr
    return json.loads(result.stdout)


def run_json(normandy, root: Path, *args: str, code: int | None = None) -> dict[str, Any]:
    result = normandy("run", "--json", *args, cwd=root, env=ENV)
    if code is not None:
        assert result.returncode == code, result.output
    assert TRACEBACK not in result.stdout
    return json.loads(result.stdout)


def by_key(tasks: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {t["key"] if "key" in t else f"{t['flow']}.{t['step']}.{t['task']}": t for t in tasks}


def db_rows(root: Path, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of the history database, read with sqlite3 (read-only, the WAL included)."""
    path = root / ".normandy" / "history.sqlite"
    assert path.is_file(), list((root / ".normandy").iterdir())
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        cursor = db.execute(sql, args)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        db.close()


RUNS = "SELECT id, status, resumed_from FROM runs ORDER BY started DESC"


def db_run(root: Path, run_id: str) -> dict[str, Any]:
    rows = db_rows(root, "SELECT * FROM runs WHERE id = ?", run_id)
    assert len(rows) == 1, rows
    return rows[0]


def db_tasks(root: Path, run_id: str) -> dict[str, dict[str, Any]]:
    rows = db_rows(root, "SELECT * FROM tasks WHERE run_id = ? ORDER BY seq", run_id)
    return {row["key"]: row for row in rows}


def db_attempts(root: Path, run_id: str, key: str) -> list[dict[str, Any]]:
    return db_rows(
        root, "SELECT * FROM attempts WHERE run_id = ? AND key = ? ORDER BY attempt", run_id, key
    )


def fingerprint(root: Path, tags=(), flows=(), params=None) -> str:
    config, problems = read_config(root, dict(os.environ))
    assert config is not None and not problems, problems
    return build_plan(config, Selection(tags, flows, MappingProxyType(params or {}))).fingerprint()


def session_members(sid: int) -> set[int]:
    """Live processes of the session ``sid`` (the orchestrator was started as its leader)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def kill_pids(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_for(condition, what: str, within: float = 30.0, proc=None) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if proc is not None and proc.poll() is not None:
            _, stderr = proc.communicate()
            pytest.fail(f"{what}: the run ended first (exit {proc.returncode}):\n{stderr}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def start_run(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*normandy_command(), "run", "--json", *args],
        cwd=root,
        env={**os.environ, **ENV},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


# -- what is recorded -----------------------------------------------------------------------


def test_every_run_and_task_is_recorded(normandy, project):
    root = project()
    summary = run_json(normandy, root, "--tags", "x", "--env", "prod", "--param", "k=v", code=1)
    run_id = summary["run_id"]
    after = time.time()

    # -- read with sqlite3
    run = db_run(root, run_id)
    assert run["status"] == "failed"
    assert json.loads(run["tags"]) == ["x"]
    assert json.loads(run["flows"]) == []
    assert YAML(typ="safe", pure=True).load(run["params"]) == {"k": "v"}
    assert run["env"] == "prod"
    assert run["version"] == __version__
    assert run["fingerprint"] == fingerprint(root, ("x",), (), {"k": "v"})
    assert run["executor"] == "local" and run["workers"] == 2
    assert run["resumed_from"] is None
    assert after - 60 < run["started"] <= run["ended"] <= after
    assert re.fullmatch(r"\d{8}-\d{6}\.\d{3}-[0-9a-f]{4}", run_id)

    tasks = db_tasks(root, run_id)
    assert list(tasks) == ["f.s1.a", "f.s1.b", "f.s2.c"]
    a, b, c = tasks.values()
    assert (a["status"], a["attempts"], a["tolerated"]) == ("succeeded", 1, 0)
    assert a["pid"] == int((root / "out" / "pid-a").read_text())  # the worker that ran it
    assert run["started"] <= a["started"] <= a["ended"] <= run["ended"]
    assert a["error_type"] is None and a["error_message"] is None
    assert json.loads(a["variables"]) == ["from_a"]
    assert json.loads(a["params"]) == {"k": "v"}
    assert (b["status"], b["attempts"]) == ("failed", 2)
    assert b["pid"] == int((root / "out" / "pid-b").read_text())
    assert b["error_kind"] == "failed"
    assert b["error_type"] == "RuntimeError"
    assert b["error_message"] == "b is not fixed yet"
    assert "RuntimeError: b is not fixed yet" in b["traceback"]
    assert run["started"] <= b["started"] <= b["ended"] <= run["ended"]
    assert (c["status"], c["attempts"], c["started"], c["ended"], c["pid"]) == (
        "not started",
        0,
        None,
        None,
        None,
    )
    attempts = db_attempts(root, run_id, "f.s1.b")
    assert [(t["attempt"], t["status"], t["error_type"]) for t in attempts] == [
        (1, "failed", "RuntimeError"),
        (2, "failed", "RuntimeError"),
    ]
    assert all(t["started"] <= t["ended"] for t in attempts)
    assert all(t["error_message"] == "b is not fixed yet" for t in attempts)

    # -- the same through `normandy runs --json`
    listed = runs_json(normandy, root)
    assert [r["id"] for r in listed] == [run_id]
    entry = listed[0]
    for field in ("status", "env", "version", "fingerprint", "started", "ended", "executor"):
        assert entry[field] == run[field], field
    assert (entry["tags"], entry["flows"], entry["params"]) == (["x"], [], {"k": "v"})
    assert entry["counts"] == {"succeeded": 1, "failed": 1, "not started": 1}
    assert entry["failing_task"] == "f.s1.b"
    assert entry["duration"] == pytest.approx(run["ended"] - run["started"])

    # -- and `normandy runs RUN_ID --json`
    shown = runs_json(normandy, root, run_id)
    assert shown["id"] == run_id and shown["status"] == "failed"
    assert (shown["tags"], shown["params"], shown["env"]) == (["x"], {"k": "v"}, "prod")
    assert shown["version"] == __version__ and shown["fingerprint"] == run["fingerprint"]
    shown_tasks = by_key(shown["tasks"])
    assert list(shown_tasks) == list(tasks)
    for key, row in tasks.items():
        for field in ("status", "attempts", "started", "ended", "pid", "error_type"):
            assert shown_tasks[key][field] == row[field], (key, field)
        assert shown_tasks[key]["error_message"] == row["error_message"]
    assert [d["status"] for d in shown_tasks["f.s1.b"]["attempts_detail"]] == ["failed", "failed"]
    assert shown_tasks["f.s1.a"]["variables"] == ["from_a"]

    # the run's own summary agrees
    assert {t["task"]: t["status"] for t in summary["tasks"]} == {
        "a": "succeeded",
        "b": "failed",
        "c": "not started",
    }


def test_flows_selection_is_recorded(normandy, project):
    conf = FAILING + "  g:\n    steps:\n      s1: [a2]\n"
    root = project(conf)
    summary = run_json(normandy, root, "--flow", "g", code=0)
    run = db_run(root, summary["run_id"])
    assert (json.loads(run["flows"]), json.loads(run["tags"]), run["env"]) == (["g"], [], "dev")
    assert run["status"] == "succeeded"
    assert run["fingerprint"] == fingerprint(root, (), ("g",))
    assert list(db_tasks(root, summary["run_id"])) == ["g.s1.a2"]


def test_runs_text_shows_the_selection_of_a_flow_run(normandy, project):
    root = project(FAILING + "  g:\n    steps:\n      s1: [a2]\n")
    run_json(normandy, root, "--flow", "g", code=0)
    result = normandy("runs", cwd=root, env=ENV)
    assert result.returncode == 0, result.output
    row = result.stdout.splitlines()[2]
    assert "flows g" in row
    assert "default" not in row, row


def test_a_damaged_history_is_reported_without_a_traceback(normandy, project):
    root = project()
    (root / ".normandy").mkdir()
    (root / ".normandy" / "history.sqlite").write_text("this is not a database\n" * 100)
    for args in (("runs",), ("run",)):
        result = normandy(*args, cwd=root, env=ENV)
        assert TRACEBACK not in result.output, result.output
        assert result.returncode in (0, 2), result.output
        assert "history.sqlite" in result.stderr, result.output


SECRETS = ("hunter2-topsecret", "tok-987654321", "envsecret-5551212")
CREDENTIALS = (
    "db: {user: alice, password: hunter2-topsecret}\n"
    "token: tok-987654321\n"
    "api: {key: '${env:NORMANDY_TEST_API_KEY}'}\n"
)


def test_credentials_are_never_stored(normandy, project):
    conf = (
        HEAD.replace("dev: {}", "dev: {credentials: conf/dev_credentials.yml}")
        + """
  f:
    tags: [default]
    steps:
      s1:
        quiet_leak: {params: {dsn: "postgres://alice:hunter2-topsecret@db"}}
        leak: {retries: 1}
"""
    )  # a param holding a credential: the run's plan and its task's params keep it masked
    root = project(conf, {"conf/dev_credentials.yml": CREDENTIALS})
    env = {**ENV, "NORMANDY_TEST_API_KEY": SECRETS[2]}
    result = normandy("run", "--json", cwd=root, env=env)
    assert result.returncode == 1, result.output
    assert len(ran(root, "leak")) == 2 and len(ran(root, "quiet_leak")) == 1
    run_id = json.loads(result.stdout)["run_id"]

    tasks = db_tasks(root, run_id)
    leak = tasks["f.s1.leak"]
    assert leak["error_type"] == "RuntimeError"
    assert leak["error_message"] == "cannot connect with *** and ***"  # masked, not dropped
    assert "cannot connect with *** and ***" in leak["traceback"]
    assert [a["error_message"] for a in db_attempts(root, run_id, "f.s1.leak")] == [
        "cannot connect with *** and ***"
    ] * 2

    outputs = [result.stdout, result.stderr]
    for args in (("runs",), ("runs", "--json"), ("runs", "last"), ("runs", run_id, "--json")):
        shown = normandy(*args, cwd=root, env=env)
        assert shown.returncode == 0, shown.output
        outputs += [shown.stdout, shown.stderr]
    assert "***" in outputs[-2]
    state = [p for p in (root / ".normandy").rglob("*") if p.is_file()]
    assert any(p.name == "history.sqlite" for p in state)
    blobs = {str(p): p.read_bytes() for p in state}
    for secret in SECRETS:
        for text in outputs:
            assert secret not in text
        for path, data in blobs.items():
            # as UTF-8 or UTF-16 (SQLite's other text encoding)
            assert secret.encode() not in data, path
            assert secret.encode("utf-16-le") not in data, path


# -- written as the run goes ----------------------------------------------------------------

SLEEPING_NEXT_STEP = (
    HEAD
    + """
  f:
    tags: [default]
    steps:
      s1: [a]
      s2: [sleepy]
      s3: [c]
"""
)

SLEEPING_SAME_STEP = (
    HEAD
    + """
  f:
    tags: [default]
    steps:
      s1: [a, sleepy]
      s3: [c]
"""
)


@pytest.mark.parametrize(
    "conf, signum",
    [
        (SLEEPING_NEXT_STEP, signal.SIGKILL),
        (SLEEPING_SAME_STEP, signal.SIGKILL),
        (SLEEPING_NEXT_STEP, signal.SIGTERM),
    ],
    ids=["SIGKILL-sleeper-in-next-step", "SIGKILL-sleeper-in-same-step", "SIGTERM"],
)
def test_a_killed_run_is_recorded_as_interrupted_and_resumes(normandy, project, conf, signum):
    root = project(conf)
    sleepy_key = "f.s2.sleepy" if conf is SLEEPING_NEXT_STEP else "f.s1.sleepy"
    full = conf is SLEEPING_NEXT_STEP and signum == signal.SIGKILL
    proc = start_run(root)
    members: set[int] = set()
    try:
        marker, pid_file = root / "out" / "started-sleepy", root / "out" / "pid-sleepy"
        wait_for(
            lambda: marker.exists() and marker.read_text() and pid_file.read_text(),
            "the sleeping task",
            proc=proc,
        )
        run_id, worker = marker.read_text(), int(pid_file.read_text())
        members = session_members(proc.pid)
        assert worker in members

        # while it runs: the history already knows
        wait_for(
            lambda: db_tasks(root, run_id)["f.s1.a"]["status"] == "succeeded",
            "a recorded as succeeded",
        )
        assert db_tasks(root, run_id)[sleepy_key]["status"] == "running"
        assert db_run(root, run_id)["status"] == "running"
        if full:
            listed = runs_json(normandy, root)
            assert [(r["id"], r["status"]) for r in listed] == [(run_id, "running")]
            assert listed[0]["ended"] is None and listed[0]["pid"] == proc.pid
            live = by_key(runs_json(normandy, root, run_id)["tasks"])
            assert live[sleepy_key]["status"] == "running"
            assert live["f.s3.c"]["status"] == "pending"
            # a running run cannot be resumed
            refused = normandy("run", "--resume", "last", cwd=root, env=ENV)
            assert refused.returncode == 2, refused.output
            assert f"run {run_id} is still running (pid {proc.pid}" in refused.stderr
            assert TRACEBACK not in refused.output

        killed_at = time.time()
        os.kill(proc.pid, signum)  # the orchestrator only
        proc.wait(timeout=30)
        if signum == signal.SIGKILL:
            kill_pids([worker])  # its worker is left behind, sleeping: ours to clean up
        # the rest of the pool goes by itself once no worker runs (and closes our pipes)
        stdout, stderr = proc.communicate(timeout=30)
        if signum == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
        else:
            assert proc.returncode == 130, stderr
            # recorded by the orchestrator itself, before anyone reads the history
            assert db_run(root, run_id)["status"] == "interrupted"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        kill_pids(session_members(proc.pid) - {os.getpid()})  # whatever of ours is left

    listed = runs_json(normandy, root)
    assert [(r["id"], r["status"]) for r in listed] == [(run_id, "interrupted")]
    assert listed[0]["counts"] == {"succeeded": 1, "interrupted": 1, "not started": 1}
    assert listed[0]["started"] <= listed[0]["ended"] <= time.time()
    if signum == signal.SIGKILL:
        assert listed[0]["ended"] <= killed_at  # the last event it recorded
    shown = runs_json(normandy, root, run_id)
    assert shown["status"] == "interrupted"
    tasks = by_key(shown["tasks"])
    assert tasks["f.s1.a"]["status"] == "succeeded"
    assert tasks["f.s1.a"]["variables"] == ["from_a"]
    assert tasks[sleepy_key]["status"] == "interrupted"
    assert tasks[sleepy_key]["attempts_detail"][0]["status"] == "interrupted"
    assert tasks["f.s3.c"]["status"] == "not started"
    if signum == signal.SIGKILL:  # reading never writes: the next run records it
        assert db_run(root, run_id)["status"] == "running"

    if full:
        text = normandy("runs", run_id, cwd=root, env=ENV)
        assert text.returncode == 0, text.output
        assert f"run {run_id}: interrupted" in text.stdout
        assert re.search(r"\ba\s+succeeded\b", text.stdout), text.stdout
        assert re.search(r"\bsleepy\s+interrupted\b", text.stdout), text.stdout

    # resume, the sleeping task made quick
    (root / "quick").write_text("")
    resumed = run_json(normandy, root, "--resume", "last", code=0)
    assert db_run(root, run_id)["status"] == "interrupted"
    assert db_tasks(root, run_id)[sleepy_key]["status"] == "interrupted"
    assert resumed["status"] == "succeeded"
    assert ran(root, "a") == [run_id]  # not run again
    assert ran(root, "sleepy") == [run_id, resumed["run_id"]]
    assert ran(root, "c") == [resumed["run_id"]]
    assert seen(root)["vars"] == {
        "from_a": f"a of {run_id}",
        "from_sleepy": f"sleepy of {resumed['run_id']}",
    }
    summary = by_key(resumed["tasks"])
    assert summary["f.s1.a"]["resumed"] is True
    assert summary[sleepy_key]["resumed"] is False
    assert [(r["id"], r["status"], r["resumed_from"]) for r in db_rows(root, RUNS)] == [
        (resumed["run_id"], "succeeded", run_id),
        (run_id, "interrupted", None),
    ]


# -- concurrent runs of one project ---------------------------------------------------------


def test_concurrent_runs_of_one_project(normandy, project):
    conf = (
        HEAD
        + """
  f:
    tags: [default]
    steps:
      s1: [a, a2]
      s2: [c]
"""
    )
    root = project(conf)  # no history database yet: all three create it at once
    procs = [start_run(root, "--workers", "1") for _ in range(3)]
    try:
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    for p, (_, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stderr
    ids = {json.loads(stdout)["run_id"] for stdout, _ in outputs}
    assert len(ids) == 3

    listed = runs_json(normandy, root)
    assert {r["id"] for r in listed} == ids
    assert [r["status"] for r in listed] == ["succeeded"] * 3
    assert [r["counts"] for r in listed] == [{"succeeded": 3}] * 3
    starts = [r["started"] for r in listed]
    assert starts == sorted(starts, reverse=True)
    for run_id in ids:
        tasks = db_tasks(root, run_id)
        assert list(tasks) == ["f.s1.a", "f.s1.a2", "f.s2.c"]
        assert {t["status"] for t in tasks.values()} == {"succeeded"}
        assert all(t["attempts"] == 1 for t in tasks.values())
    assert sorted(ran(root, "c")) == sorted(ids)
    # every run read its own variables
    assert len(ran(root, "a")) == len(ran(root, "a2")) == 3


# -- `normandy runs` ------------------------------------------------------------------------


def test_runs_text_output(normandy, project):
    root = project()
    failed = run_json(normandy, root, code=1)["run_id"]
    fix(root, "b")
    ok = run_json(normandy, root, code=0)["run_id"]

    result = normandy("runs", cwd=root, env=ENV)
    assert result.returncode == 0, result.output
    lines = result.stdout.splitlines()
    header = lines[0].split()
    for column in ("RUN", "STATUS", "STARTED", "DURATION", "FAILING", "SIZE"):
        assert column in header, header
    assert header[:4] == ["RUN", "STATUS", "STARTED", "DURATION"]
    rows = [line for line in lines if line.startswith(("2", "1"))]
    assert [row.split()[0] for row in rows] == [ok, failed]  # newest first
    ok_row, failed_row = rows
    assert ok_row.split()[1] == "succeeded"
    assert "3 succeeded" in ok_row
    assert failed_row.split()[1] == "failed"
    assert "1 failed" in failed_row and "1 succeeded" in failed_row
    assert "1 not started" in failed_row
    assert re.search(r"f\.s1\.b\s+[\d.]+ (B|KiB)$", failed_row)  # the failing task, the size
    assert re.search(r"\s-\s+[\d.]+ (B|KiB)$", ok_row)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d+\.\d\ds", failed_row), failed_row
    # the store's total, and what bounds it (SPEC 20)
    assert re.fullmatch(
        r"store: [\d.]+ (B|KiB) in all, variables and logs; it keeps the last 20 runs "
        r"\(confs.keep_runs to change it\)",
        lines[-1],
    ), lines[-1]

    last = normandy("runs", "last", cwd=root, env=ENV)
    assert last.returncode == 0, last.output
    assert last.stdout.startswith(f"run {ok}: succeeded")
    for column in ("FLOW", "STEP", "TASK", "STATUS", "ATTEMPTS", "DURATION", "PID", "ERROR"):
        assert column in last.stdout
    one = normandy("runs", failed, cwd=root, env=ENV)
    assert one.returncode == 0, one.output
    assert one.stdout.startswith(f"run {failed}: failed")
    assert f"normandy {__version__}" in one.stdout
    b_line = next(line for line in one.stdout.splitlines() if re.search(r"\bs1\s+b\b", line))
    assert "failed" in b_line and "RuntimeError: b is not fixed yet" in b_line
    assert re.search(r"\bfailed\s+2\b", b_line), b_line  # two attempts
    assert re.search(r"\bc\s+not started\b", one.stdout)

    limited = normandy("runs", "-n", "1", cwd=root, env=ENV)
    assert limited.returncode == 0 and failed not in limited.stdout and ok in limited.stdout

    # an unknown run: a clear message listing the recent runs, exit 2, no traceback
    for args in (("runs", "nope"), ("run", "--resume", "nope")):
        result = normandy(*args, cwd=root, env=ENV)
        assert result.returncode == 2, result.output
        assert "no run 'nope' is recorded" in result.stderr
        assert f"recent runs: {ok}, {failed}" in result.stderr
        assert TRACEBACK not in result.output
        assert result.stdout == ""
    assert [r["id"] for r in db_rows(root, RUNS)] == [ok, failed]  # nothing was run


def test_runs_counts_tasks_by_how_they_ended(normandy, project):
    root = project(
        HEAD
        + """
  f:
    tags: [default]
    steps:
      s1:
        a:
        b: {error_tolerance: true}
      s2: [c]
"""
    )
    tolerated = run_json(normandy, root, code=0)["run_id"]
    [listed] = runs_json(normandy, root)
    # a tolerated failure is not a failure of the run: counted apart, no failing task
    assert listed["counts"] == {"succeeded": 2, "tolerated": 1}
    assert listed["failing_task"] is None
    text = normandy("runs", cwd=root, env=ENV).stdout
    row = next(line for line in text.splitlines() if line.startswith(tolerated))
    assert re.search(r"\s2 succeeded, 1 tolerated\s+-\s+[\d.]+ (B|KiB)$", row), row


def test_runs_before_any_run(normandy, project):
    root = project()
    result = normandy("runs", cwd=root, env=ENV)
    assert result.returncode == 0, result.output
    assert "No run is recorded yet" in result.stdout
    assert TRACEBACK not in result.output
    assert runs_json(normandy, root) == []
    for args in (("runs", "last"), ("run", "--resume", "last")):
        last = normandy(*args, cwd=root, env=ENV)
        assert last.returncode == 2, last.output
        assert "no run is recorded" in last.stderr and "none yet" in last.stderr
        assert TRACEBACK not in last.output
    assert not (root / "out").exists()  # nothing ran


# -- --resume -------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_resume_a_failed_run(normandy, project, executor, executor_args):
    root = project()
    first = run_json(normandy, root, *executor_args(executor), code=1)
    old = first["run_id"]
    assert (ran(root, "a"), len(ran(root, "b")), ran(root, "c")) == ([old], 2, [])

    fix(root, "b")
    second = run_json(normandy, root, "--resume", "last", *executor_args(executor), code=0)
    new = second["run_id"]
    assert new != old and second["status"] == "succeeded"
    assert ran(root, "a") == [old]  # not run again
    assert ran(root, "b") == [old, old, new]
    assert ran(root, "c") == [new]
    assert seen(root)["vars"] == {"from_a": f"a of {old}", "from_b": f"b of {new}"}
    tasks = by_key(second["tasks"])
    assert (tasks["f.s1.a"]["status"], tasks["f.s1.a"]["resumed"]) == ("cached", True)
    assert tasks["f.s1.a"]["attempts"] == 0
    assert (tasks["f.s1.b"]["status"], tasks["f.s1.b"]["resumed"]) == ("succeeded", False)
    assert (tasks["f.s2.c"]["status"], tasks["f.s2.c"]["resumed"]) == ("succeeded", False)

    shown = runs_json(normandy, root, new)
    assert shown["resumed_from"] == old and shown["status"] == "succeeded"
    assert shown["executor"] == executor
    recorded = by_key(shown["tasks"])
    assert recorded["f.s1.a"]["resumed"] is True and recorded["f.s1.a"]["status"] == "cached"
    assert recorded["f.s1.a"]["cached_from"] == old
    assert recorded["f.s1.b"]["resumed"] is False and recorded["f.s1.b"]["attempts"] == 1
    assert db_tasks(root, new)["f.s1.a"]["resumed"] == 1
    # the resumed run is left as it was
    assert db_rows(root, RUNS) == [
        {"id": new, "status": "succeeded", "resumed_from": old},
        {"id": old, "status": "failed", "resumed_from": None},
    ]
    assert db_tasks(root, old)["f.s1.b"]["status"] == "failed"
    if executor == "local":
        text = normandy("runs", new, cwd=root, env=ENV)
        assert f"run {new}: succeeded, resuming {old}" in text.stdout
        assert f"cached (from {old})" in text.stdout


def test_resume_an_explicit_run_id(normandy, project):
    root = project()
    older = run_json(normandy, root, code=1)["run_id"]
    newer = run_json(normandy, root, code=1)["run_id"]
    fix(root, "b")
    resumed = run_json(normandy, root, "--resume", older, code=0)
    assert db_run(root, resumed["run_id"])["resumed_from"] == older
    assert ran(root, "a") == [older, newer]  # not a third time
    assert seen(root)["vars"]["from_a"] == f"a of {older}"  # that run's variables


def test_resume_a_succeeded_run_reuses_it_all(normandy, project):
    root = project()
    fix(root, "b")
    done = run_json(normandy, root, code=0)["run_id"]
    again = run_json(normandy, root, "--resume", done, code=0)
    assert {t["status"] for t in again["tasks"]} == {"cached"}
    assert ran(root, "a") == [done] and ran(root, "c") == [done]
    assert seen(root)["run_id"] == done


def test_resume_after_fixing_the_configuration_or_a_param(normandy, project):
    """The advice a failed run gives (`fix the cause, then: normandy run --resume …`)
    always works: a fixed param in the file or on the command line, a longer timeout —
    what they touch reruns, the rest is reused."""
    root = project(FAILING.replace("b: {retries: 1}", "b: {retries: 1, params: {mode: broken}}"))
    old = run_json(normandy, root, code=1)["run_id"]
    conf = root / "pipeline" / "pipeline_conf.yml"
    conf.write_text(conf.read_text().replace("mode: broken", "mode: fixed"))
    fix(root, "b")
    explained = normandy(
        "run", "--resume", old, "--param", "extra=1", "--explain", cwd=root, env=ENV
    )
    assert explained.returncode == 0, explained.output
    new = db_rows(root, RUNS)[0]["id"]
    # --param extra=1 applies to every task, but a does not read it: reused; the task
    # that reads all its params (c: it dumps them) runs with it
    assert f"explain: f.s1.a: reuse {old}" in explained.stderr
    assert "explain: f.s1.b: run (no earlier success)" in explained.stderr
    assert ran(root, "a") == [old] and ran(root, "b")[-1] == new
    assert seen(root)["params"] == {"extra": 1}
    # resumed again with nothing changed: everything that succeeded is reused
    third = run_json(normandy, root, "--resume", new, "--param", "extra=1", code=0)
    assert {t["status"] for t in third["tasks"]} == {"cached"}


def test_resume_with_a_selection_is_a_usage_error(normandy, project):
    root = project()
    old = run_json(normandy, root, code=1)["run_id"]
    fix(root, "b")
    for extra in (["--tags", "x"], ["--flow", "f"], ["--env", "prod"]):
        result = normandy("run", "--resume", old, *extra, cwd=root, env=ENV)
        assert result.returncode == 2, (extra, result.output)
        assert "--resume" in result.stderr and extra[0] in result.stderr, result.stderr
        assert TRACEBACK not in result.output
    assert [r["id"] for r in db_rows(root, RUNS)] == [old]
    assert ran(root, "a") == [old]


def test_resume_keeps_selection_env_and_params(normandy, project):
    conf = FAILING + "  other:\n    tags: [default]\n    steps:\n      s1: [a2]\n"
    root = project(conf)
    old = run_json(
        normandy, root, "--tags", "x", "--env", "prod", "--param", "k=v", "--param", "n=5", code=1
    )["run_id"]
    assert ran(root, "a2") == []  # `other` has no tag x
    fix(root, "b")
    new = run_json(normandy, root, "--resume", "last", code=0)["run_id"]
    assert ran(root, "a2") == []  # still not selected: the tags are those of the run
    view = seen(root)
    assert view["run_id"] == new
    assert view["env"] == "prod"
    assert view["params"] == {"k": "v", "n": 5}
    assert view["param_types"] == {"k": "str", "n": "int"}
    assert view["tags"] == ["default", "x"]
    record = runs_json(normandy, root, new)
    assert (record["tags"], record["flows"], record["params"], record["env"]) == (
        ["x"],
        [],
        {"k": "v", "n": 5},
        "prod",
    )
    assert record["resumed_from"] == old
    assert record["fingerprint"] == db_run(root, old)["fingerprint"]


def test_resume_keeps_a_date_param(normandy, project):
    root = project()
    run_json(normandy, root, "--param", "day=2024-01-01", code=1)
    fix(root, "b")
    run_json(normandy, root, "--resume", "last", code=0)
    view = seen(root)
    assert view["param_types"] == {"day": "date"}, view
    assert view["params"] == {"day": "datetime.date(2024, 1, 1)"}  # repr(), see default=repr


def test_a_resumed_run_can_be_resumed(normandy, project):
    conf = (
        HEAD
        + """
  f:
    tags: [default]
    steps:
      s1: [a]
      s2: [b]
      s3: [b2]
      s4: [c]
"""
    )
    root = project(conf)
    first = run_json(normandy, root, code=1)["run_id"]
    fix(root, "b")
    second = run_json(normandy, root, "--resume", "last", code=1)
    assert second["status"] == "failed"
    assert by_key(second["tasks"])["f.s3.b2"]["status"] == "failed"
    fix(root, "b2")
    third = run_json(normandy, root, "--resume", second["run_id"], code=0)
    assert ran(root, "a") == [first]
    assert ran(root, "b") == [first, second["run_id"]]
    assert ran(root, "b2") == [second["run_id"], third["run_id"]]
    assert ran(root, "c") == [third["run_id"]]
    assert seen(root)["vars"] == {
        "from_a": f"a of {first}",
        "from_b": f"b of {second['run_id']}",
        "from_b2": f"b2 of {third['run_id']}",
    }
    tasks = by_key(third["tasks"])
    assert [tasks[k]["resumed"] for k in ("f.s1.a", "f.s2.b", "f.s3.b2", "f.s4.c")] == [
        True,
        True,
        False,
        False,
    ]
    assert [tuple(r.values()) for r in db_rows(root, RUNS)] == [
        (third["run_id"], "succeeded", second["run_id"]),
        (second["run_id"], "failed", first),
        (first, "failed", None),
    ]
