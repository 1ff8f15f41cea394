"""The run history (SPEC 8) as a library: :class:`normandy_core.history.History` on a real
SQLite file, and what ``--resume`` compares (:mod:`normandy_core.resume`).

A run "killed" here is a real process that records a run and exits without ending it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from normandy_core.config import ProjectConfig
from normandy_core.execution import Outcome, Resume, TaskError
from normandy_core.history import (
    HISTORY_FILE,
    SCHEMA_VERSION,
    AttemptRecord,
    History,
    HistoryError,
    RunNotFoundError,
    RunStart,
    TaskStart,
)
from normandy_core.plan import Plan, Selection, Task, build_plan
from normandy_core.resume import ResumeError, prepare_resume, selection_of
from normandy_core.store import FlowStore, Variables

TASKS = [Task("f", "s1", "a", "a", MappingProxyType({"k": 1})), Task("f", "s1", "b", "b", {})]
TASKS.append(Task("f", "s2", "c", "c", MappingProxyType({})))


def run_info(run_id: str, started: float, **over: Any) -> RunStart:
    fields: dict[str, Any] = {
        "id": run_id,
        "started": started,
        "tags": ("x",),
        "flows": (),
        "params": {"k": "v"},
        "env": "prod",
        "executor": "local",
        "workers": 2,
        "version": "9.9.9",
        "fingerprint": "0123456789abcdef",
        "plan": [{"name": "f", "tags": ["x"], "steps": []}],
        **over,
    }
    return RunStart(**fields)


def task_rows(tasks: list[Task] = TASKS) -> list[TaskStart]:
    return [TaskStart(t.key, t.flow, t.step, t.name, t.process, dict(t.params)) for t in tasks]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / ".normandy"


@pytest.fixture
def history(state: Path) -> Iterator[History]:
    h = History(state)
    yield h
    h.close()


def raw(state: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(state / HISTORY_FILE, timeout=30)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def finished(task: Task, status: str, **over: Any) -> Outcome:
    return Outcome(task, status=status, **over)


# -- writing --------------------------------------------------------------------------------


def test_start_run_records_a_running_run_and_pending_tasks(history, state):
    now = time.time()
    history.start_run(run_info("r1", now), task_rows())
    record = history.get("r1")
    assert record.status == "running"
    assert (record.started, record.ended, record.duration) == (now, None, None)
    assert (record.tags, record.flows, record.params, record.env) == (["x"], [], {"k": "v"}, "prod")
    assert (record.version, record.fingerprint, record.executor, record.workers) == (
        "9.9.9",
        "0123456789abcdef",
        "local",
        2,
    )
    assert record.plan == [{"name": "f", "tags": ["x"], "steps": []}]
    assert (record.pid, record.host, record.resumed_from) == (
        os.getpid(),
        socket.gethostname(),
        None,
    )
    tasks = history.tasks("r1")
    assert [t.key for t in tasks] == ["f.s1.a", "f.s1.b", "f.s2.c"]  # plan order
    assert {t.status for t in tasks} == {"pending"}
    assert tasks[0].params == {"k": 1}
    assert (tasks[0].attempts, tasks[0].started, tasks[0].pid, tasks[0].variables) == (
        0,
        None,
        None,
        [],
    )
    assert (state / HISTORY_FILE).is_file()
    assert raw(state, "PRAGMA journal_mode") == [("wal",)]


def test_start_run_is_one_transaction(history):
    history.start_run(run_info("r1", 1.0), task_rows())
    duplicate = [*task_rows(), task_rows()[0]]
    with pytest.raises(sqlite3.IntegrityError):
        history.start_run(run_info("r2", 2.0), duplicate)
    assert [r.id for r in history.runs()] == ["r1"]
    assert history.tasks("r2") == []


def test_attempts_and_task_ends_are_recorded(history, state):
    history.start_run(run_info("r1", 100.0, resumed_from="r0"), task_rows())
    a, b, _ = TASKS
    history.attempt_started("r1", a.key, 1, 101.0)
    running = history.tasks("r1")[0]
    assert (running.status, running.attempts, running.started) == ("running", 1, 101.0)
    assert history.attempts("r1", a.key) == [
        AttemptRecord(1, "running", 101.0, None, None, None, None, None)
    ]
    history.attempt_ended("r1", a.key, 1, "succeeded", 101.5, 102.0, 4242)
    history.task_ended(
        "r1",
        finished(
            a,
            "succeeded",
            attempts=1,
            started=101.5,
            ended=102.0,
            pid=4242,
            variables=("zeta", "alpha"),
        ),
    )

    error = TaskError("failed", "ValueError", "bad value", "Traceback ...\nValueError: bad value")
    history.attempt_started("r1", b.key, 1, 101.0)
    history.attempt_ended("r1", b.key, 1, "failed", None, 101.2, 77, error)
    history.attempt_started("r1", b.key, 2, 103.0)
    assert history.tasks("r1")[1].started == 101.0  # the first attempt's start is kept
    history.attempt_ended("r1", b.key, 2, "failed", None, 103.5, 78, error)
    history.task_ended(
        "r1",
        finished(
            b, "failed", tolerated=True, attempts=2, started=101.0, ended=103.5, pid=78, error=error
        ),
    )

    ta, tb, tc = history.tasks("r1")
    assert (ta.status, ta.attempts, ta.started, ta.ended, ta.pid) == (
        "succeeded",
        1,
        101.5,
        102.0,
        4242,
    )
    assert ta.duration == pytest.approx(0.5)
    assert ta.variables == ["alpha", "zeta"]
    assert (ta.error_kind, ta.error_type, ta.error_message, ta.traceback) == (None,) * 4
    assert (tb.status, tb.tolerated, tb.attempts, tb.pid) == ("failed", True, 2, 78)
    assert (tb.error_kind, tb.error_type, tb.error_message) == ("failed", "ValueError", "bad value")
    assert tb.traceback.endswith("ValueError: bad value")
    assert [(x.attempt, x.status, x.pid, x.ended) for x in history.attempts("r1", b.key)] == [
        (1, "failed", 77, 101.2),
        (2, "failed", 78, 103.5),
    ]
    assert history.attempts("r1", b.key)[0].started == 101.0  # kept where None is given
    assert tc.status == "pending"
    assert history.get("r1").resumed_from == "r0"

    history.end_run("r1", "failed", ended=104.0)
    record = history.get("r1")
    assert (record.status, record.ended, record.duration) == ("failed", 104.0, 4.0)
    assert history.tasks("r1")[2].status == "not started"  # pending -> not started


def test_a_batch_writes_its_events_in_one_transaction_at_its_end(history, state):
    history.start_run(run_info("r1", 100.0), task_rows())
    a, b, _ = TASKS
    with history.batch():
        history.attempt_started("r1", a.key, 1, 101.0)
        with history.batch():  # nested: joins the outer batch
            history.attempt_started("r1", b.key, 1, 101.0)
        # nothing is written yet: another connection sees both tasks still pending
        assert raw(state, "SELECT status FROM tasks WHERE run_id = 'r1' ORDER BY seq") == [
            ("pending",),
            ("pending",),
            ("pending",),
        ]
    assert [t.status for t in history.tasks("r1")] == ["running", "running", "pending"]


def test_flush_writes_a_batch_so_far_and_keeps_batching(history, state):
    history.start_run(run_info("r1", 100.0), task_rows())
    a, b, _ = TASKS
    status = "SELECT status FROM tasks WHERE run_id = 'r1' ORDER BY seq"
    with history.batch():
        history.attempt_started("r1", a.key, 1, 101.0)
        history.flush()
        assert raw(state, status)[:2] == [("running",), ("pending",)]
        history.attempt_started("r1", b.key, 1, 102.0)
        assert raw(state, status)[:2] == [("running",), ("pending",)]  # kept, not written
    assert raw(state, status)[:2] == [("running",), ("running",)]


def test_a_batch_cut_short_by_an_interrupt_still_writes_what_happened(history):
    history.start_run(run_info("r1", 100.0), task_rows())
    a = TASKS[0]
    with pytest.raises(KeyboardInterrupt), history.batch():
        history.attempt_started("r1", a.key, 1, 101.0)
        raise KeyboardInterrupt
    assert history.tasks("r1")[0].status == "running"
    with history.batch():
        pass  # an empty batch opens no transaction
    assert history.attempts("r1", a.key)[0].status == "running"


class _InterruptedAfter:
    """The history's connection, but a Ctrl-C lands just after ``statement`` runs (where
    the issue saw it: between ``BEGIN IMMEDIATE`` and the ``try`` that rolls back)."""

    def __init__(self, db: sqlite3.Connection, statement: str) -> None:
        self.db, self.statement, self.armed = db, statement, True

    def execute(self, sql: str, *args: Any) -> Any:
        cursor = self.db.execute(sql, *args)
        if self.armed and sql.startswith(self.statement):
            self.armed = False
            os.kill(os.getpid(), signal.SIGINT)  # Python runs the handler right here
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


@pytest.mark.parametrize("statement", ["BEGIN IMMEDIATE", "UPDATE", "COMMIT"])
def test_a_ctrl_c_inside_a_transaction_never_leaves_it_open(history, statement):
    """Issue 22: after a Ctrl-C, the next write failed with "cannot start a transaction
    within a transaction" and advised moving the (intact) history away."""
    history.start_run(run_info("r1", 100.0), task_rows())
    a, b, _ = TASKS
    # Python's own Ctrl-C, whatever this process had (a pytest-xdist worker's may differ)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    real = history.db
    history.db = _InterruptedAfter(real, statement)  # type: ignore[assignment]
    try:
        with pytest.raises(KeyboardInterrupt):
            history.attempt_started("r1", a.key, 1, 101.0)
    finally:
        history.db = real
        signal.signal(signal.SIGINT, previous)
    assert not real.in_transaction
    history.attempt_started("r1", b.key, 1, 102.0)  # no HistoryError
    statuses = [t.status for t in history.tasks("r1")]
    # the interrupted write happened whole, or not at all: never half
    assert statuses[1:] == ["running", "pending"]
    assert statuses[0] in ("running", "pending")


def test_a_storm_of_ctrl_c_never_breaks_the_history(history):
    """Real SIGINTs, every millisecond or so, while runs are written: each one that lands
    in Normandy's code raises ``KeyboardInterrupt`` there, as Python's own handler would;
    whatever it interrupts, the next write works and no transaction stays open. One that
    lands in the test's own lines is let go: raised there, it would end the test (and, on
    a pytest-xdist worker, the worker)."""
    history.start_run(run_info("r1", 100.0), task_rows())
    stop = threading.Event()
    me = os.getpid()

    def storm() -> None:
        while not stop.wait(0.0007):
            os.kill(me, signal.SIGINT)

    def interrupt(signum: int, frame: Any) -> None:
        if frame is None:  # handed on by Normandy, at the end of a block that held it
            raise KeyboardInterrupt
        while frame is not None:
            if "normandy_core" in frame.f_code.co_filename:
                raise KeyboardInterrupt
            frame = frame.f_back

    interrupted = 0
    previous = signal.signal(signal.SIGINT, interrupt)
    sender = threading.Thread(target=storm, daemon=True)
    sender.start()
    deadline = time.monotonic() + 1.0
    n = 0
    try:
        while time.monotonic() < deadline:
            n += 1
            try:
                with history.batch():
                    history.attempt_started("r1", TASKS[n % 3].key, n, float(n))
                    history.heartbeat("r1", float(n))
            except KeyboardInterrupt:
                interrupted += 1
    finally:
        stop.set()
        sender.join()
        time.sleep(0.05)  # a last signal in flight lands here, let go
        signal.signal(signal.SIGINT, previous)
    assert interrupted > 10, interrupted
    assert not history.db.in_transaction
    history.heartbeat("r1", 1e9)
    assert history.get("r1").status == "running"


def test_a_resumed_task_is_recorded_as_such(history):
    history.start_run(run_info("r2", 1.0, resumed_from="r1"), task_rows())
    history.task_ended("r2", Outcome(TASKS[0], status="succeeded", resumed=True))
    task = history.tasks("r2")[0]
    assert (task.status, task.resumed, task.attempts, task.started) == ("succeeded", True, 0, None)
    assert history.tasks("r2")[1].resumed is False


def test_end_run_interrupts_what_was_running(history):
    history.start_run(run_info("r1", 10.0), task_rows())
    a, b, c = TASKS
    history.attempt_started("r1", a.key, 1, 11.0)
    history.attempt_ended("r1", a.key, 1, "succeeded", 11.0, 12.0, 5)
    history.task_ended("r1", finished(a, "succeeded", attempts=1, started=11.0, ended=12.0))
    history.attempt_started("r1", b.key, 1, 11.0)
    before = time.time()
    history.end_run("r1", "interrupted")
    record = history.get("r1")
    assert record.status == "interrupted"
    assert before <= record.ended <= time.time()  # no time given: now
    assert [t.status for t in history.tasks("r1")] == ["succeeded", "interrupted", "not started"]
    assert history.attempts("r1", b.key)[0].status == "interrupted"
    assert history.attempts("r1", a.key)[0].status == "succeeded"
    assert history.attempts("r1", c.key) == []


def test_a_maps_elements_and_a_wait_for_a_pool_are_recorded(history):
    history.start_run(run_info("r1", 10.0), task_rows())
    a, b, c = TASKS
    elements = [TaskStart(f"{a.key}[{k}]", "f", "s1", f"a[{k}]", "a", {}) for k in "xyz"]
    history.tasks_added("r1", a.key, elements, 11.0)
    tasks = history.tasks("r1")
    assert [t.key for t in tasks] == [a.key, *(e.key for e in elements), b.key, c.key]
    assert [t.parent for t in tasks] == [None, a.key, a.key, a.key, None, None]
    assert (tasks[0].status, tasks[0].started) == ("running", 11.0)
    history.task_waiting("r1", b.key, "db")
    assert history.tasks("r1")[4].waiting == "db"  # shown as waiting (pool db), live
    history.attempt_started("r1", b.key, 1, 12.0)
    history.task_ended("r1", finished(b, "succeeded", attempts=1, waited=1.5))
    done = history.tasks("r1")[4]
    assert (done.waiting, done.waited) == (None, 1.5)
    history.task_ended("r1", finished(a, "mapped"))
    history.end_run("r1", "succeeded")
    assert [t.status for t in history.tasks("r1")][:2] == ["mapped", "not started"]


def test_writes_are_visible_to_another_connection_at_once(history, state):
    """One short transaction per event: a reader sees each event as it happens."""
    history.start_run(run_info("r1", 1.0), task_rows())
    assert raw(state, "SELECT status FROM runs") == [("running",)]
    history.attempt_started("r1", TASKS[0].key, 1, 2.0)
    assert raw(state, "SELECT status FROM tasks WHERE key = 'f.s1.a'") == [("running",)]
    reader = History(state)
    try:
        assert reader.tasks("r1")[0].status == "running"
        assert reader.get("r1").status == "running"  # our pid is alive
    finally:
        reader.close()


# -- reading --------------------------------------------------------------------------------


def test_runs_newest_first_and_limited(history):
    for run_id, started in (("r-b", 20.0), ("r-a", 10.0), ("r-c", 30.0), ("r-d", 30.0)):
        history.start_run(run_info(run_id, started), [])
        history.end_run(run_id, "succeeded", ended=started + 1)
    assert [r.id for r in history.runs()] == ["r-d", "r-c", "r-b", "r-a"]  # ties: by id
    assert [r.id for r in history.runs(2)] == ["r-d", "r-c"]
    assert history.get("last").id == "r-d"
    assert history.get("r-a").started == 10.0


def test_unknown_runs(history, state):
    with pytest.raises(RunNotFoundError) as empty:
        history.get("last")
    assert "no run is recorded" in str(empty.value)
    assert "none yet" in str(empty.value)
    assert str(state / HISTORY_FILE) in str(empty.value)
    with pytest.raises(RunNotFoundError, match="no run 'nope' is recorded"):
        history.get("nope")
    for n in range(7):
        history.start_run(run_info(f"r{n}", float(n)), [])
        history.end_run(f"r{n}", "succeeded", ended=n + 0.5)
    with pytest.raises(RunNotFoundError) as error:
        history.get("nope")
    message = str(error.value)
    assert "recent runs: r6, r5, r4, r3, r2 (see `normandy runs`)" in message
    assert "r1" not in message
    assert history.runs() != [] and history.get("last").id == "r6"


# -- a run whose orchestrator died ----------------------------------------------------------

KILLED = """
import sys
from pathlib import Path
from types import MappingProxyType
from normandy_core.execution import Outcome
from normandy_core.history import History, RunStart, TaskStart
from normandy_core.plan import Task

a, b, c = (Task("f", s, n, n, MappingProxyType({})) for s, n in (("s1", "a"), ("s2", "b"),
                                                                   ("s3", "c")))
h = History(Path(sys.argv[1]))
h.start_run(RunStart("killed", 100.0, (), (), {}, "dev", "local", 1, "1", "f", []),
            [TaskStart(t.key, t.flow, t.step, t.name, t.process, {}) for t in (a, b, c)])
h.attempt_started("killed", a.key, 1, 101.0)
h.attempt_ended("killed", a.key, 1, "succeeded", 101.0, 102.0, 11)
h.task_ended("killed", Outcome(a, status="succeeded", attempts=1, started=101.0, ended=102.0,
                               pid=11))
h.attempt_started("killed", b.key, 1, 103.0)
import os
os._exit(0)  # no end_run: as if killed
"""


@pytest.fixture
def killed_run(state: Path) -> int:
    """A real process records a run, starts its second task and dies; returns its pid."""
    state.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED), str(state)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    [(status, pid)] = raw(state, "SELECT status, pid FROM runs WHERE id = 'killed'")
    assert status == "running" and pid != os.getpid()
    return pid


@pytest.mark.parametrize("read", ["runs", "get", "last"])
def test_a_dead_orchestrators_run_reads_as_interrupted(state, killed_run, read):
    history = History(state)
    try:
        record = {
            "runs": lambda: history.runs()[0],
            "get": lambda: history.get("killed"),
            "last": lambda: history.get("last"),
        }[read]()
        assert record.id == "killed"
        assert record.status == "interrupted"
        assert record.ended == 103.0  # its last recorded event
        assert record.duration == 3.0
        tasks = history.tasks("killed")
        assert [(t.key, t.status) for t in tasks] == [
            ("f.s1.a", "succeeded"),
            ("f.s2.b", "interrupted"),
            ("f.s3.c", "not started"),
        ]
        assert tasks[0].ended == 102.0 and tasks[0].pid == 11
        assert record.reason is not None and f"pid {killed_run}" in record.reason
    finally:
        history.close()
    # reading never writes: the database still says running…
    assert raw(state, "SELECT status, ended FROM runs") == [("running", None)]


def test_the_index_and_tallies_of_many_runs(state, killed_run):
    """What a list of many runs reads (``normandy ui``): each run's status as it reads
    now, the flows of its plan and their tags picked out by SQLite, and its tasks counted
    in one query; a dead run counts as interrupted there too."""
    history = History(state)
    try:
        plan = [
            {"name": "orders", "tags": ["nightly", "eu"], "steps": []},
            {"name": "billing", "tags": ["nightly"], "steps": []},
        ]
        history.start_run(run_info("r1", 200.0, plan=plan, tags=("nightly",)), task_rows())
        history.task_ended("r1", finished(TASKS[0], "succeeded", attempts=1))
        history.task_ended("r1", finished(TASKS[1], "failed", attempts=1, tolerated=True))
        history.end_run("r1", "succeeded", ended=201.0)
        index = {r.id: r for r in history.index()}
        assert list(index) == ["r1", "killed"]  # newest first
        assert index["r1"].flows == ("orders", "billing")
        assert index["r1"].flow_tags == ("nightly", "eu") and index["r1"].tags == ("nightly",)
        assert index["r1"].status == "succeeded"
        assert index["killed"].status == "interrupted" and index["killed"].flows == ()
        assert history.tallies(["r1", "killed"]) == {
            "r1": {"succeeded": 1, "tolerated": 1, "not started": 1},
            "killed": {"succeeded": 1, "interrupted": 1, "not started": 1},
        }
        assert history.index(1)[0].id == "r1"
    finally:
        history.close()


def test_the_next_run_records_a_dead_run_as_interrupted(state, killed_run):
    history = History(state)
    try:
        history.start_run(run_info("next", 200.0), [])
    finally:
        history.close()
    assert raw(state, "SELECT status, ended FROM runs WHERE id = 'killed'") == [
        ("interrupted", 103.0)
    ]
    assert raw(state, "SELECT status FROM tasks WHERE run_id = 'killed' ORDER BY seq") == [
        ("succeeded",),
        ("interrupted",),
        ("not started",),
    ]
    assert raw(state, "SELECT status FROM attempts WHERE key = 'f.s2.b'") == [("interrupted",)]
    [(reason,)] = raw(state, "SELECT reason FROM runs WHERE id = 'killed'")
    assert f"pid {killed_run}" in reason


def test_a_dead_run_without_any_task_event_ends_when_it_started(history, state):
    history.start_run(run_info("quiet", 50.0), task_rows())
    history.db.execute("UPDATE runs SET pid = ? WHERE id = 'quiet'", (_dead_pid(),))
    record = history.get("quiet")
    assert (record.status, record.ended) == ("interrupted", 50.0)
    assert {t.status for t in history.tasks("quiet")} == {"not started"}


def _dead_pid() -> int:
    """The pid of a real process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_run_and_a_run_of_another_host_are_left_running(history, state):
    history.start_run(run_info("mine", 1.0), task_rows())  # this process: alive
    history.start_run(run_info("elsewhere", 2.0), task_rows())
    dead = _dead_pid()
    history.db.execute(
        "UPDATE runs SET pid = ?, host = ? WHERE id = 'elsewhere'", (dead, "another-host")
    )
    assert {r.id: r.status for r in history.runs()} == {"mine": "running", "elsewhere": "running"}
    assert history.get("elsewhere").ended is None


def test_a_dead_run_whose_pid_was_reused_is_settled(state, killed_run):
    history = History(state)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # the killed orchestrator's pid, now held by an unrelated process started later
        history.db.execute("UPDATE runs SET pid = ? WHERE id = 'killed'", (other.pid,))
        assert history.get("killed").status == "interrupted"
    finally:
        other.kill()
        other.wait()
        history.close()


# -- what --resume compares -----------------------------------------------------------------

CONF = """
confs:
  envs: {dev: }
flows:
  f:
    tags: [default]
    params: {version: 1}
    steps:
      s1:
        a:
        b: {retries: 1, retry_delay: 0.5, timeout: 10}
      s2:
        c: {error_tolerance: true, iter_param: {name: loc, values: [x, y]}}
"""

GoodConf = Callable[..., ProjectConfig]


def plan_of(good_conf: GoodConf, text: str, params: dict[str, Any] | None = None) -> Plan:
    return build_plan(good_conf(text), Selection((), (), MappingProxyType(params or {})))


def flows_of(plan: Plan) -> list[dict[str, Any]]:
    # as stored in, and read back from, the history
    return json.loads(json.dumps(plan.to_dict()["flows"], sort_keys=True, default=repr))


def _recorded(history: History, plan: Plan, run_id: str = "old", status: str = "failed"):
    sel = plan.selection
    history.start_run(
        run_info(
            run_id,
            1.0,
            tags=sel.tags,
            flows=sel.flows,
            params=dict(sel.params),
            fingerprint=plan.fingerprint(),
            plan=plan.to_dict()["flows"],
        ),
        task_rows(list(plan.tasks())),
    )
    return run_id


def test_prepare_resume(good_conf, history, state):
    plan = plan_of(good_conf, CONF)
    _recorded(history, plan)
    a, b, *_ = plan.tasks()
    history.task_ended("old", finished(a, "succeeded", attempts=1))
    history.task_ended("old", finished(b, "failed", attempts=2))
    history.end_run("old", "failed", ended=2.0)
    record = history.get("old")
    assert selection_of(record) == Selection((), (), {})
    resume = prepare_resume(history, record, plan_of(good_conf, CONF), state)
    assert resume == Resume("old", frozenset({"f.s1.a"}), state / "runs" / "old")


def test_prepare_resume_keeps_the_selection(good_conf, history):
    plan = build_plan(good_conf(CONF), Selection(("default",), ("f",), {"n": 5, "s": "v"}))
    _recorded(history, plan)
    history.end_run("old", "failed", ended=2.0)
    selection = selection_of(history.get("old"))
    assert selection == Selection(("default",), ("f",), {"n": 5, "s": "v"})
    assert build_plan(good_conf(CONF), selection).fingerprint() == plan.fingerprint()


def test_prepare_resume_accepts_a_changed_plan_and_commits_what_was_left_staged(
    good_conf, history, state
):
    """The configuration may change between a run and its resume (a fixed param): what
    changed reruns, decided by fingerprints. A task that succeeded in a step its run
    never finished (its normandy killed) left its writes staged: committed, to be reused."""
    plan = plan_of(good_conf, CONF)
    _recorded(history, plan)
    a, *_ = plan.tasks()
    history.task_ended("old", finished(a, "succeeded", attempts=1, variables=("x",)))
    history.end_run("old", "failed", ended=2.0)
    staged = FlowStore(state / "runs" / "old", "f")
    Variables(str(staged.vars_dir), str(staged.staging(a.key)))["x"] = 1
    changed = plan_of(good_conf, CONF.replace("retries: 1,", "retries: 4,"))
    resume = prepare_resume(history, history.get("old"), changed, state)
    assert resume.run_id == "old"
    assert staged.names() == ["x"] and not staged.staging(a.key).exists()


def test_prepare_resume_refuses_a_running_run(good_conf, history, state):
    plan = plan_of(good_conf, CONF)
    _recorded(history, plan)  # by this process, alive
    with pytest.raises(ResumeError, match=rf"run old is still running \(pid {os.getpid()} on "):
        prepare_resume(history, history.get("old"), plan, state)


# -- a database written by an earlier release -----------------------------------------------

V1_DATABASE = Path(__file__).parent / "data" / "history-v1.sqlite"
"""Written by normandy 1.0.0.dev0 (schema 1, no ``user_version``) running a real project:
a failed run (a retry, a tolerated failure, an ``iter_param``), its resume, a Ctrl-C and a
SIGKILL (that run's host renamed, so that it reads as running on any machine)."""


def test_a_database_of_the_previous_release_is_upgraded_in_place(state):
    state.mkdir(parents=True)
    path = state / HISTORY_FILE
    path.write_bytes(V1_DATABASE.read_bytes())
    assert raw(state, "PRAGMA user_version") == [(0,)]
    history = History(state)
    try:
        assert raw(state, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
        runs = history.runs()
        assert [(r.id, r.status, r.resumed_from) for r in runs] == [
            ("20261130-185024.660-2db1", "running", None),
            ("20261130-185021.654-d2a8", "interrupted", None),
            ("20261130-185017.228-5db7", "succeeded", "20261130-185015.478-6551"),
            ("20261130-185015.478-6551", "failed", None),
        ]
        failed = history.get("20261130-185015.478-6551")
        assert (failed.env, failed.executor, failed.workers) == ("dev", "local", 2)
        assert failed.version == "1.0.0.dev0"
        assert (failed.reason, failed.log_problems) == (None, [])
        [flow] = failed.plan
        assert flow["name"] == "main"
        assert flow["steps"][0]["tasks"][0]["params"]["version"] == "Andromeda"
        assert failed.duration is not None and 0 < failed.duration < 60
        tasks = {t.key: t for t in history.tasks(failed.id)}
        assert len(tasks) == 7
        assert tasks["main.transform.flaky"].attempts == 2
        assert tasks["main.transform.flaky"].variables == ["flaky_done"]
        assert tasks["main.transform.tolerated_fail"].tolerated
        assert tasks["main.load.fail_once"].error_message == "not fixed yet"
        assert "RuntimeError: not fixed yet" in (tasks["main.load.fail_once"].traceback or "")
        assert (
            tasks["main.extract.make_rows"].fingerprint,
            tasks["main.extract.make_rows"].cached_from,
        ) == (None, None)
        assert [
            (a.attempt, a.status) for a in history.attempts(failed.id, "main.transform.flaky")
        ] == [
            (1, "failed"),
            (2, "succeeded"),
        ]
        resumed = history.tasks("20261130-185017.228-5db7")
        assert sum(t.resumed for t in resumed) == 5
        # and it is written to as usual
        history.start_run(run_info("new", time.time()), task_rows())
        history.end_run("new", "succeeded")
        assert history.get("last").id == "new"
    finally:
        history.close()
    again = History(state)  # opening an up-to-date database changes nothing
    again.close()
    assert raw(state, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


def test_a_database_of_a_newer_release_is_refused(state):
    History(state).close()
    db = sqlite3.connect(state / HISTORY_FILE)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(HistoryError, match="written by a newer Normandy .*upgrade normandy"):
        History(state)


def test_two_processes_opening_an_old_database_migrate_it_once(state):
    state.mkdir(parents=True)
    (state / HISTORY_FILE).write_bytes(V1_DATABASE.read_bytes())
    opener = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from normandy_core.history import History
        History(Path(sys.argv[1])).close()
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", opener, str(state)], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    assert raw(state, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert len(raw(state, "SELECT id FROM runs")) == 4


V2_DATABASE = Path(__file__).parent / "data" / "history-v2.sqlite"
"""Written by normandy 1.0.0 (schema 2) running a real project with ``cache: true``
(tests/cli/test_reuse.py's): a run, then a run with ``--param secret=xq7``; the env's
credentials are ``token: abc``. Its fingerprints hold unkeyed hashes of the params' values,
of the env's settings and of the credentials."""


def _unkeyed(value: Any) -> str:
    """How normandy 1.0.0 hashed a value in a fingerprint (xxh3-128 of sorted JSON)."""
    import xxhash

    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    return xxhash.xxh3_128_hexdigest(text.encode())


def test_a_database_with_unkeyed_hashes_is_scrubbed_when_upgraded(state):
    state.mkdir(parents=True)
    (state / HISTORY_FILE).write_bytes(V2_DATABASE.read_bytes())
    before = " ".join(str(r) for r in raw(state, "SELECT fingerprint_parts FROM tasks"))
    leaked = {_unkeyed("xq7"), _unkeyed(5), _unkeyed({"token": "abc"})}
    assert leaked <= set(re.findall(r"[0-9a-f]{32}", before))  # what brute force finds
    history = History(state)
    try:
        assert raw(state, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
        after = " ".join(
            str(r)
            for table in ("tasks", "attempts")
            for r in raw(state, f"SELECT fingerprint, fingerprint_parts FROM {table}")
        )
        assert not leaked & set(re.findall(r"[0-9a-f]{32}", after))
        successes = history.successes("f.one.raw")  # still found (a partial run's inputs)
        assert [s.run_id for s in successes] == [
            "20261207-133652.476-a30d",
            "20261207-133650.398-78ca",
        ]
    finally:
        history.close()


def test_the_modules_a_task_imported_when_it_last_succeeded(history):
    """For a fork server to import them before the task runs next time (issue 26)."""
    from normandy_core.fingerprint import Code, Fingerprint, Wiring
    from normandy_core.trace import Trace

    def fingerprint(*imported: str) -> Fingerprint:
        trace = Trace({}, {}, {"imported": imported})
        return Fingerprint(Code("procs", "s"), Wiring("procs:a"), "e", "c", trace)

    a, b, _ = TASKS
    for run_id, started, modules in (("r1", 100.0, ("pandas",)), ("r2", 200.0, ("sklearn",))):
        history.start_run(run_info(run_id, started), task_rows())
        history.task_ended(
            run_id,
            finished(a, "succeeded", attempts=1, fingerprint=fingerprint(*modules)),
        )
        history.task_ended(run_id, finished(b, "failed", attempts=1))
    assert history.imported_modules([a.key, b.key, "f.s9.none"]) == {a.key: ("sklearn",)}
    history.start_run(run_info("r3", 300.0), task_rows())  # its newest success, alone:
    history.task_ended("r3", finished(a, "succeeded", attempts=1, fingerprint=fingerprint()))
    assert history.imported_modules([a.key]) == {a.key: ()}  # not an older one's
