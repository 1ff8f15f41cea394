"""The run's events (:mod:`normandy_core.events`): what a :class:`RunObserver` is told, in
which order, by the real orchestrator running real processes (under every executor; dask
on the cluster a run starts for itself)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from normandy_core.events import RunObserver
from normandy_core.outcomes import Outcome, RunInfo, Summary, TaskError
from normandy_core.plan import Flow, Step, Task

PROCS = """
from normandy_core import hookimpl


def ok(pipe):
    pass


def flaky(pipe):
    marker = pipe.path / "flaky-tried"
    if not marker.exists():
        marker.write_text("1")
        raise ConnectionError("first attempt fails")


def boom(pipe):
    raise RuntimeError("boom")


@hookimpl
def normandy_processes():
    return {"ok": ok, "flaky": flaky, "boom": boom, "never": ok}
"""

FLOWS = """
f:
  tags: [default]
  steps:
    s1:
      ok:
      flaky: {retries: 1}
    s2: [boom]
    s3: [never]
g:
  tags: [default]
  steps:
    only: [ok]
"""

EVENTS = sorted(name for name in vars(RunObserver) if not name.startswith("_"))


def _plain(value: Any) -> Any:
    """An event argument as a comparable value."""
    if isinstance(value, RunInfo):
        return "run"
    if isinstance(value, Flow):
        return value.name
    if isinstance(value, Step):
        return f"{value.flow}.{value.name}"
    if isinstance(value, Task):
        return value.key
    if isinstance(value, Outcome):
        return (value.task.key, value.status)
    if isinstance(value, TaskError):
        return value.kind
    if isinstance(value, Summary):
        return value.status
    return value


class Recorder(RunObserver):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.pids: dict[tuple[str, int], int | None] = {}


def _recording(name: str) -> Any:
    def record(self: Recorder, *args: Any) -> None:
        if name == "task_started":  # pid and time vary: keep them aside
            task, attempt, pid, when = args
            assert isinstance(when, float)
            self.pids[(task.key, attempt)] = pid
            args = (task, attempt)
        self.events.append((name, *(_plain(a) for a in args)))

    return record


for _name in EVENTS:
    setattr(Recorder, _name, _recording(_name))


def task_events(events: list[tuple[Any, ...]], key: str) -> list[tuple[Any, ...]]:
    """The events about task ``key``, without the key."""
    out = []
    for name, *args in events:
        if args and args[0] == key:
            out.append((name, *args[1:]))
        elif args and isinstance(args[0], tuple) and args[0][0] == key:
            out.append((name, args[0][1]))
    return out


@pytest.mark.parametrize("executor", ["local", "serial", "dask"])
def test_the_events_of_a_run_in_order(run_project, executor):
    recorder = Recorder()
    _, summary = run_project(FLOWS, PROCS, executor, observers=[recorder])
    assert summary.status == "failed"
    events = recorder.events
    flow_level = [
        e
        for e in events
        if e[0]
        in (
            "run_started",
            "flow_started",
            "flow_skipped",
            "step_started",
            "step_ended",
            "flow_ended",
            "run_ended",
        )
    ]
    assert flow_level == [
        ("run_started", "run"),
        ("flow_started", "f"),
        ("step_started", "f.s1"),
        ("step_ended", "f.s1", True),
        ("step_started", "f.s2"),
        ("step_ended", "f.s2", False),
        ("flow_ended", "f", "failed"),  # s3 never starts
        ("flow_skipped", "g"),  # an earlier flow failed
        ("run_ended", "failed"),
    ]
    decided = ("task_decided", None, "cache off")  # fingerprinted, never reused here
    assert task_events(events, "f.s1.ok") == [
        decided,
        ("task_submitted", 1),
        ("task_started", 1),
        ("task_ended", "succeeded"),
    ]
    assert task_events(events, "f.s1.flaky") == [
        decided,
        ("task_submitted", 1),
        ("task_started", 1),
        ("task_retrying", 1, "failed", 0.0),
        ("task_submitted", 2),
        ("task_started", 2),
        ("task_ended", "succeeded"),
    ]
    assert task_events(events, "f.s2.boom") == [
        decided,
        ("task_submitted", 1),
        ("task_started", 1),
        ("task_ended", "failed"),
    ]
    assert task_events(events, "f.s3.never") == []
    # each task's events come between its step's start and end
    ended_s1 = events.index(("step_ended", "f.s1", True))
    assert all(events.index(e) < ended_s1 for e in events if e[1:2] == ("f.s1.ok",))
    # the worker that ran each attempt: a pool process, or this one with `serial`
    pids = set(recorder.pids.values())
    assert None not in pids
    assert (os.getpid() in pids) == (executor == "serial")
    # the summary names the worker of each task's last attempt
    for outcome in summary.outcomes:
        if outcome.attempts:
            assert outcome.pid == recorder.pids[(outcome.task.key, outcome.attempts)]


def test_every_event_is_emitted(run_project):
    """Each method of RunObserver is called by some run (task_resumed: by --resume, tested
    end to end in tests/cli/test_progress.py; task_cached: with cache on, in
    tests/cli/test_reuse.py; task_waiting and task_mapped: with pools and maps, in
    tests/core/test_execution.py)."""
    recorder = Recorder()
    run_project(FLOWS, PROCS, "serial", observers=[recorder])
    seen = {e[0] for e in recorder.events}
    others = {"task_resumed", "task_cached", "task_waiting", "task_mapped"}
    assert seen == set(EVENTS) - others


class Broken(RunObserver):
    def task_ended(self, outcome: Outcome) -> None:
        raise ValueError("a bug in a display")


def test_an_observer_that_raises_is_reported_and_dropped(run_project):
    recorder = Recorder()
    root, summary = run_project(FLOWS, PROCS, "serial", observers=[Broken(), recorder])
    assert summary.status == "failed"  # the run went on: same outcome as without it
    assert [e[0] for e in recorder.events].count("task_ended") == 3
    run_log = (Path(summary.log_dir) / "run.log").read_text()
    assert run_log.count("the run observer Broken failed in task_ended") == 1
    assert "ValueError: a bug in a display" in run_log


def test_the_logs_tell_the_events(run_project):
    root, summary = run_project(FLOWS, PROCS, "local")
    lines = (Path(summary.log_dir) / "flow-f.log").read_text()
    for text in (
        "flow f started",
        "step s1 started: 2 tasks",
        "attempt 1 started on worker",
        "attempt 1 failed (failed): ConnectionError: first attempt fails; retrying in 0 s",
        "attempt 2 started on worker",
        "step s1 ended",
        "FAILED after 1 attempt(s): failed",
        "flow f failed in step s2; later steps not started",
    ):
        assert text in lines, text
    assert (
        "flow g not started: an earlier flow failed"
        in (Path(summary.log_dir) / "run.log").read_text()
    )
