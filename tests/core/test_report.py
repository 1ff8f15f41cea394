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
        self.texts: list[tuple[str, str, str]] = []  # (tag, class, text) of the innermost
        self.open: list[tuple[str, str]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.elements.append((tag, found))
        if tag not in ("meta", "input", "br", "line", "path", "rect", "link"):
            self.open.append((tag, found.get("class", "")))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        while self.open:
            if self.open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.open:
            self.texts.append((*self.open[-1], data))

    def text_of(self, tag: str, cls: str) -> list[str]:
        """The text of each ``tag`` element of class ``cls``."""
        return [d for t, c, d in self.texts if t == tag and cls in c.split()]

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
    lanes = " ".join(page.text_of("text", "lane-pid"))
    for outcome in summary.outcomes:
        if outcome.pid:
            assert str(outcome.pid) in lanes  # each worker on its lane
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
    assert r"&lt;b&gt;\&#34;bold\&#34; &amp; co&lt;/b&gt;" in html
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
    assert len(page.find("path", "edge")) == 1  # a -> b
    assert "left_out (avoid_tags)" in page.all_text
    assert "retries 2" in page.all_text  # in the task's tooltip


# -- the report's visible defects (issue 23, item 16) ----------------------------------------

Attempts = list[tuple[str, int, str, float, float, int]]
"""``(task key, attempt, status, started, ended, pid)``, times from the run's start."""


def _recorded(tmp_path: Path, workers: int, attempts: Attempts) -> Any:
    """A run of the ``local`` executor recorded through the history's own API, with the
    attempts given (a real run cannot be told which worker runs what, nor when)."""
    from normandy_core.outcomes import Outcome
    from normandy_core.plan import Task

    t0 = time.time() - 100
    keys = list(dict.fromkeys(a[0] for a in attempts))
    tasks = {k: Task(*k.split("."), process="p", params={}) for k in keys}
    plan: list[dict[str, Any]] = []
    for task in tasks.values():
        if not plan or plan[-1]["name"] != task.flow:
            plan.append({"name": task.flow, "tags": [], "steps": []})
        steps = plan[-1]["steps"]
        if not steps or steps[-1]["name"] != task.step:
            steps.append({"name": task.step, "skipped": [], "tasks": []})
        steps[-1]["tasks"].append(
            {"name": task.name, "key": task.key, "process": "p", "params": {}}
        )
    history = History(tmp_path / ".normandy")
    history.start_run(
        RunStart("r1", t0, (), (), {}, "dev", "local", workers, "9", "x", plan),
        [TaskStart(t.key, t.flow, t.step, t.name, "p", {}) for t in tasks.values()],
    )
    for key, number, status, start, end, pid in attempts:
        history.attempt_started("r1", key, number, t0 + start)
        history.attempt_ended("r1", key, number, status, t0 + start, t0 + end, pid)
    for key, task in tasks.items():
        mine = [a for a in attempts if a[0] == key]
        history.task_ended(
            "r1",
            Outcome(task, mine[-1][2], False, len(mine), t0 + mine[0][3], t0 + mine[-1][4],
                    mine[-1][5]),
        )  # fmt: skip
    history.end_run("r1", "succeeded", ended=t0 + max(a[4] for a in attempts))
    view = collect(history, "r1", tmp_path / "logs")
    history.close()
    return view


def test_a_run_of_two_workers_shows_two_worker_rows(tmp_path: Path):
    """Reported: "the timeline shows 4 worker rows for `local, 2 workers`". A worker's
    next attempt starts before the end of its last one is recorded (the orchestrator notes
    an end when it hears of it), and a worker that crashed is replaced by a new process:
    still two workers, two rows."""
    view = _recorded(
        tmp_path,
        2,
        [
            ("f.s.a", 1, "succeeded", 0.0, 1.05, 101),
            ("f.s.b", 1, "succeeded", 1.0, 2.0, 101),  # started before a's end was heard
            ("f.s.c", 1, "crashed", 0.0, 1.5, 202),  # its worker died...
            ("f.s.d", 1, "succeeded", 1.6, 2.5, 303),  # ...and 303 took its place
            ("f.t.e", 1, "succeeded", 2.6, 3.0, 101),
            ("f.t.f", 1, "succeeded", 2.6, 3.2, 303),
        ],
    )
    page = Page(render_report(view))
    assert "local, 2 workers" in page.all_text
    lanes = page.find("rect", "lane-bg")
    assert len(lanes) == 2, [lane["height"] for lane in lanes]
    assert [float(lane["height"]) for lane in lanes] == [28.0, 28.0]  # one row each
    assert page.text_of("text", "lane-label") == ["worker 1", "worker 2"]
    assert page.text_of("text", "lane-pid") == ["pid 101", "pids 202, 303"]
    assert len(page.find("rect", "attempt")) == 6  # every attempt still drawn


def test_step_names_are_never_cut(tmp_path: Path):
    """Reported: step labels cut (``orders › ext…``): two flows with quick steps next to
    a long one; every step's band is named whole, and names never run into each other."""
    attempts: Attempts = [("orders.extract_orders.get", 1, "succeeded", 0.0, 0.01, 1)]
    attempts += [("orders.transform_orders.t", 1, "succeeded", 0.02, 0.03, 1)]
    attempts += [("orders.load.put", 1, "succeeded", 0.04, 60.0, 1)]
    attempts += [("billing.extract_invoices.get", 1, "succeeded", 60.1, 60.11, 1)]
    attempts += [("billing.reconcile_everything.r", 1, "succeeded", 60.12, 60.13, 1)]
    view = _recorded(tmp_path, 1, attempts)
    page = Page(render_report(view))
    labels = page.find("text", "band-label")
    names = page.text_of("text", "band-label")
    assert names == [
        "orders › extract_orders",
        "orders › transform_orders",
        "orders › load",
        "billing › extract_invoices",
        "billing › reconcile_everything",
    ]
    assert not any("…" in name for name in names)
    spans: dict[str, list[tuple[float, float]]] = {}
    for label, name in zip(labels, names):
        x = float(label["x"])
        spans.setdefault(label["y"], []).append((x, x + len(name) * 7.0))
    for row in spans.values():
        for (_, end), (start, _) in zip(sorted(row), sorted(row)[1:]):
            assert end <= start, row
    assert len(spans) > 1  # the quick steps' names are on rows of their own


def mapped_history(root: Path) -> History:
    """A run still going, as the recorder writes it: a map ``f.s.t`` whose three elements
    ended (``t[c]`` failed, so nothing was collected), and ``f.s.db`` waiting for a unit of
    pool ``db``."""
    from types import MappingProxyType

    from normandy_core.config import MapSpec
    from normandy_core.outcomes import Outcome, TaskError
    from normandy_core.plan import Element, Task, element_task

    history = History(root / ".normandy")
    base = {"params": {}, "error_tolerance": False, "retries": 0, "retry_delay": 0}
    plan = [
        {
            "name": "f",
            "tags": [],
            "steps": [
                {
                    "name": "s",
                    "skipped": [],
                    "tasks": [
                        {**base, "name": "t", "key": "f.s.t", "process": "t", "timeout": None,
                         "map": {"over": "files", "as": "item", "max": 1000}},
                        {**base, "name": "db", "key": "f.s.db", "process": "db", "timeout": None,
                         "pools": {"db": 1}},
                    ],  # fmt: skip
                }
            ],
        }
    ]
    now = time.time()
    history.start_run(
        RunStart("r1", now - 5, (), (), {}, "dev", "local", 2, "9", "x", plan),
        [TaskStart("f.s.t", "f", "s", "t", "t", {}), TaskStart("f.s.db", "f", "s", "db", "db", {})],
    )
    mapped = Task("f", "s", "t", "t", MappingProxyType({}), map=MapSpec("files"))
    elements = [
        element_task(mapped, Element("f.s.t", "files", key, i, key))
        for i, key in enumerate("abc")
    ]
    history.tasks_added(
        "r1", "f.s.t", [TaskStart(e.key, "f", "s", e.name, "t", {}) for e in elements], now - 4
    )
    history.task_waiting("r1", "f.s.db", "db")
    for element in elements:
        failed = element.name == "t[c]"
        error = TaskError("failed", "ValueError", "cannot handle c") if failed else None
        status = "failed" if failed else "succeeded"
        history.task_ended("r1", Outcome(element, status, False, 1, now - 3, now - 2, error=error))
    error = TaskError("failed", "ElementsFailed", "1 of 3 elements failed (t[c])")
    history.task_ended("r1", Outcome(mapped, "mapped", False, 0, now - 4, now - 2, error=error))
    history.flush()
    return history


def test_a_map_shown_as_one_group_and_a_task_waiting_for_a_pool(tmp_path: Path):
    """SPEC 19 in the report: a map's elements as one row, ``t[*]``, with their tally and
    each element listed; an element that failed keeps a row of its own; a task waiting for
    a pool says so; the map itself is not counted among the tasks."""
    history = mapped_history(tmp_path)
    page_html = render_report(collect(history, "r1", tmp_path / "logs"))
    history.end_run("r1", "interrupted")  # stopped while db waited: it did not start
    ended_html = render_report(collect(history, "r1", tmp_path / "logs"))
    history.close()
    assert "waiting (pool" not in ended_html and "not started" in ended_html
    page = Page(page_html)
    rows = [a.get("data-key") for tag, a in page.elements if "task-row" in a.get("class", "")]
    assert rows == ["f.s.t", "f.s.t[c]", "f.s.db"]  # t[a] and t[b]: in the group's row
    text = " ".join(page.text)
    assert "t[*]" in text and "2 succeeded, 1 failed; not collected" in text
    assert "waiting (pool db)" in text
    assert "t[a]" in text and "t[b]" in text  # listed in the group
    # the totals: 4 tasks (the 3 elements and db), not the map itself
    assert '<span class="n">4</span><span class="what">tasks</span>' in page_html
