"""The run report (:mod:`normandy_core.report`), made from the history and logs of real runs
of the real orchestrator, read back with an HTML parser."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from normandy_core.history import History, RunNotFoundError, RunStart, TaskStart
from normandy_core.report import (
    ReportError,
    collect,
    read_tail,
    render_flows_page,
    render_report,
    write_report,
)

PROCS = """
from normandy_core import hookimpl


def ok(pipe, log, params):
    print("ok says hi")
    pipe.vars["greeting"] = params["note"]


def flaky(pipe, log):
    marker = pipe.path / "flaky-tried"
    if not marker.exists():
        marker.write_text("1")
        raise ConnectionError("the server did not answer")
    log.info("flaky got through")


def soft(pipe):
    raise ValueError("3 rows have no id")


def boom(pipe, log):
    log.warning("boom is about to fail")
    raise RuntimeError("boom: the process exploded")


@hookimpl
def normandy_processes():
    return {"ok": ok, "flaky": flaky, "soft": soft, "boom": boom, "never": ok}
"""

FLOWS = """
f:
  tags: [default]
  steps:
    s1:
      ok: {params: {note: '<b>"bold" & co</b>'}}
      flaky: {retries: 1}
      soft: {error_tolerance: true}
    s2: [boom]
    s3: [never]
"""


class Page(HTMLParser):
    """Every element's tag and attributes, and the page's text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, cls: str | None = None, **attrs: str) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.elements
            if t == tag
            and (cls is None or cls in a.get("class", "").split())
            and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    @property
    def all_text(self) -> str:
        return "".join(self.text)


@pytest.fixture
def failed_run(run_project) -> tuple[Path, Any]:
    return run_project(FLOWS, PROCS, "local")


def test_the_report_of_a_real_run(failed_run):
    root, summary = failed_run
    history = History(root / ".normandy")
    view = collect(history, "last", root / "logs")
    history.close()
    assert view.run.id == summary.run.id
    html = render_report(view)
    page = Page(html)
    text = page.all_text

    assert f"normandy run {summary.run.id}: failed" in text  # the title
    # the timeline: one bar per task that ran, one rectangle per attempt, by worker
    bars = {b["data-task"]: b for b in page.find("g", "bar")}
    assert sorted(bars) == ["f.s1.flaky", "f.s1.ok", "f.s1.soft", "f.s2.boom"]
    assert {k: b["data-status"] for k, b in bars.items()} == {
        "f.s1.ok": "succeeded",
        "f.s1.flaky": "succeeded",
        "f.s1.soft": "tolerated",
        "f.s2.boom": "failed",
    }
    attempts = page.find("rect", "attempt")
    assert len(attempts) == 5  # flaky ran twice
    assert len(page.find("rect", "retried")) == 1
    assert len(page.find("line", "retry-link")) == 1
    assert Counter(" ".join(sorted(a["class"].split()[1:])) for a in attempts) == {
        "s-succeeded": 2,
        "retried s-failed": 1,
        "s-tolerated": 1,
        "s-failed": 1,
    }
    for outcome in summary.outcomes:
        if outcome.pid:
            assert f"worker {outcome.pid}" in text  # a lane per worker
    # the flows picture has every task, those that never started too
    nodes = {n["data-task"] for n in page.find("g", "task-node") if "data-task" in n}
    assert nodes == {o.task.key for o in summary.outcomes}
    assert page.find("rect", "s-not-started")
    # totals, what went wrong, and the slowest tasks
    assert "What went wrong" in text and "Slowest tasks" in text
    cards = [c["class"] for c in page.find("div", "card")]
    for category in ("s-succeeded", "s-failed", "s-tolerated", "s-not-started"):
        assert f"card {category}" in cards
    # every task: params (escaped), attempts, error, the tail of its log
    rows = {r["data-key"]: r for r in page.find("details", "task-row")}
    assert list(rows) == [o.task.key for o in summary.outcomes]
    assert "open" in rows["f.s2.boom"] and "open" not in rows["f.s1.ok"]
    # params as JSON, escaped: the markup in a value is shown, never interpreted
    assert not page.find("b")
    assert r"&lt;b&gt;\&quot;bold\&quot; &amp; co&lt;/b&gt;" in html
    assert r'"note": "<b>\"bold\" & co</b>"' in text  # what a reader sees
    assert "greeting" in text  # the variable ok wrote
    assert 'raise RuntimeError("boom: the process exploded")' in text  # the traceback
    assert "ConnectionError: the server did not answer" in text  # flaky's first attempt
    assert "ok says hi" in text and "boom is about to fail" in text  # log tails
    assert "flaky got through" in text
    # self-contained: nothing to fetch
    for outside in ("<link", " src=", "@import", "url(http", "https://", "http://cdn"):
        assert outside not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_a_run_whose_logs_were_deleted(failed_run):
    root, summary = failed_run
    shutil.rmtree(summary.log_dir)
    path, view = write_report(root, summary.run.id)
    assert path == root / "logs" / summary.run.id / "report.html"
    assert not view.logs_found
    html = path.read_text()
    assert f"The log folder logs/{summary.run.id}/ is gone" in html
    assert "Log not available" in html
    assert len(Page(html).find("g", "bar")) == 4  # the history still tells everything else
    # once the report is there, the folder exists but still holds no logs
    assert not write_report(root, "last")[1].logs_found


def test_write_report_errors_are_for_people(failed_run, tmp_path: Path):
    root, _ = failed_run
    with pytest.raises(RunNotFoundError, match="no run 'nope' is recorded"):
        write_report(root, "nope")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(ReportError, match="cannot write the report to .*a-folder"):
        write_report(root, "last", folder)


def _history_with(tmp_path: Path) -> History:
    history = History(tmp_path / ".normandy")
    plan = [
        {
            "name": "f",
            "tags": [],
            "steps": [
                {
                    "name": "s",
                    "skipped": [],
                    "tasks": [
                        {
                            "name": "t",
                            "key": "f.s.t",
                            "process": "t",
                            "params": {},
                            "error_tolerance": False,
                            "retries": 0,
                            "retry_delay": 0,
                            "timeout": None,
                        }
                    ],
                }
            ],
        }
    ]
    history.start_run(
        RunStart("r1", time.time() - 5, (), (), {}, "dev", "local", 1, "9", "x", plan),
        [TaskStart("f.s.t", "f", "s", "t", "t", {})],
    )
    return history


def test_a_run_still_going_and_a_run_where_nothing_ran(tmp_path: Path):
    history = _history_with(tmp_path)  # recorded by this (living) process: running
    view = collect(history, "r1", tmp_path / "logs")
    html = render_report(view)
    assert "This run is still going" in html
    assert "No task ran in this run" in html
    assert view.ended >= view.run.started + 5  # the timeline runs until now
    history.end_run("r1", "interrupted")
    html = render_report(collect(history, "r1", tmp_path / "logs"))
    history.close()
    assert "This run was interrupted" in html and "This run is still going" not in html


def test_read_tail(tmp_path: Path):
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {n}\n" for n in range(20_000)))
    assert read_tail(log, 3) == ("line 19997", "line 19998", "line 19999")
    assert read_tail(tmp_path / "missing.log") is None
    (tmp_path / "empty.log").write_text("")
    assert read_tail(tmp_path / "empty.log") == ()


def test_the_flows_page():
    flows = [
        {
            "name": "f",
            "tags": ["nightly"],
            "steps": [
                {
                    "name": "a",
                    "skipped": ["left_out"],
                    "tasks": [
                        {"name": "x[1]", "key": "f.a.x[1]", "process": "x", "params": {"v": 1}}
                    ],
                },
                {
                    "name": "b",
                    "skipped": [],
                    "tasks": [
                        {"name": "y", "key": "f.b.y", "process": "y", "params": {}, "retries": 2}
                    ],
                },
            ],
        }
    ]
    html = render_flows_page(flows, "Flows: f")
    page = Page(html)
    assert html.startswith("<!doctype html>")
    assert {n.get("data-task") for n in page.find("g", "task-node")} == {"f.a.x[1]", "f.b.y", None}
    assert len(page.find("line", "edge")) == 1  # a -> b
    assert "left_out (avoid_tags)" in page.all_text
    assert "retries 2" in page.all_text  # in the task's tooltip
