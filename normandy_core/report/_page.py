"""The run report's sections, as the data its template draws: the run, its totals and
problems, the timeline, the slowest tasks, the flows, and every task with its params,
attempts, error, why it ran or was reused, and the tail of its log. The web app's run page
is made of the same pieces (:func:`task_rows`, :func:`cards`, :func:`run_meta`…)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from normandy_core.history import AttemptTotals, DatasetRecord, RunRecord, VariableAccess
from normandy_core.report import _graph, _timeline
from normandy_core.report._data import Attempt, RunView, TaskView
from normandy_core.report._templates import fmt_secs, fmt_time, render
from normandy_core.status import (
    CACHED,
    CATEGORIES,
    CRASHED,
    FAILED,
    INTERRUPTED,
    MAPPED,
    NOT_STARTED,
    RUNNING,
    SUCCEEDED,
    TIMED_OUT,
    TOLERATED,
    describe_tally,
    label,
    tally,
)

LEGEND = (
    (SUCCEEDED, "succeeded"),
    (FAILED, "failed"),
    (TOLERATED, "failed, tolerated"),
    (CRASHED, "crashed"),
    (TIMED_OUT, "timed out"),
    (INTERRUPTED, "interrupted"),
)
SLOWEST = 5
ELEMENTS_LISTED = 200
"""The elements of a map listed in its group's row, at most (those that did not succeed
have rows of their own)."""
TIMELINE_INTRO = (
    "Each bar is a task, on the worker that ran it (a worker that replaced one that "
    "crashed takes its row); a failed attempt that was retried is drawn hollow, joined to "
    "its retry by a dashed line. Shaded bands are the steps; times count from the first "
    "task's start. Hover a bar for details, click it for the task."
)
FLOWS_INTRO = (
    "Steps run left to right; the tasks of a step run side by side; the variables (round) "
    "and datasets (square) each task wrote, joined to the later tasks that read them, as "
    "this run did; the datasets a flow read first, at its left."
)


@dataclass(frozen=True)
class TaskRow:
    """A task as its row shows it."""

    anchor: str
    view: TaskView
    log_state: str
    """``none`` (not run here), ``gone`` (the log folder is), ``missing`` (no file),
    ``tail`` (:attr:`log_tail` holds its last lines) or ``link`` (read from
    :attr:`log_url`)."""
    log_name: str = ""
    log_url: str = ""
    elements: tuple[TaskRow, ...] | None = None
    """A map's group (:func:`grouped`): the rows of its elements."""

    @property
    def record(self) -> Any:
        return self.view.record

    @property
    def category(self) -> str:
        return self.view.category

    @property
    def name(self) -> str:
        """The task's name; ``task[*]`` for a map's group."""
        r = self.view.record
        return f"{r.task}[*]" if self.elements is not None else r.task

    @property
    def status_text(self) -> str:
        """As :func:`status_text`; a map's group: its elements' tally (``2 succeeded, 1
        failed; not collected``)."""
        if self.elements is None:
            return status_text(self.view.record)
        r = self.view.record
        ended = (e.record for e in self.elements)
        counts = tally((e.status, e.tolerated, e.resumed) for e in ended)
        return describe_tally(counts) + ("; not collected" if r.error_type else "")

    @property
    def attempt_count(self) -> int:
        """Its attempts; a map's group: its elements', summed."""
        if self.elements is None:
            return int(self.view.record.attempts)
        return sum(e.record.attempts for e in self.elements)

    @property
    def elements_listed(self) -> tuple[TaskRow, ...]:
        """A map's group: its first :data:`ELEMENTS_LISTED` elements."""
        return (self.elements or ())[:ELEMENTS_LISTED]

    @property
    def elements_more(self) -> int:
        """A map's group: how many of its elements are not listed."""
        return max(0, len(self.elements or ()) - ELEMENTS_LISTED)

    @property
    def open(self) -> bool:
        return self.category == FAILED

    @property
    def reads(self) -> tuple[VariableAccess, ...]:
        return self.view.reads

    @property
    def writes(self) -> tuple[VariableAccess, ...]:
        return self.view.writes

    @property
    def datasets(self) -> tuple[DatasetRecord, ...]:
        """The datasets its last attempt read and wrote."""
        return self.view.datasets

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        return self.view.attempts

    @property
    def log_tail(self) -> tuple[str, ...]:
        return self.view.log_tail or ()

    @property
    def show_attempts(self) -> bool:
        return bool(self.attempts) and (len(self.attempts) > 1 or self.category != SUCCEEDED)

    @property
    def why(self) -> str:
        r = self.view.record
        if r.status == CACHED:
            return f"reused from run {r.cached_from}: {r.reason}"
        return f"ran: {r.reason}"

    @property
    def error_text(self) -> str:
        r = self.view.record
        if not (r.traceback or r.error_type):
            return ""
        return (r.traceback or f"{r.error_type}: {r.error_message}").rstrip()


def status_text(r: Any) -> str:
    """A task's status as a row shows it (``r``: its :class:`~normandy_core.history.
    TaskRecord`): ``waiting (pool db)`` while it waits for units of a pool (SPEC 19: not
    started yet, in a run still going), else :func:`~normandy_core.status.label`."""
    if r.waiting and r.status == "pending":
        return f"waiting (pool {r.waiting})"
    return label(r.status, r.tolerated, r.resumed, r.cached_from)


LogPlace = Callable[[int, TaskView], "tuple[str, str, str]"]
"""``(index, task) -> (log_state, log_name, log_url)``."""


def task_rows(view: RunView, log: LogPlace | None = None) -> list[TaskRow]:
    """Every task of the run, as rows; ``log`` says where each one's log is shown (by
    default: its tail, inline, as the report does)."""
    place = log or (lambda i, t: report_log(view, t))
    return [TaskRow(f"task-{i}", t, *place(i, t)) for i, t in enumerate(view.tasks)]


def grouped(rows: list[TaskRow]) -> list[TaskRow]:
    """``rows`` with a map's elements as one group (its mapped task's row, ``task[*]``,
    listing them), but those that did not succeed, which keep rows of their own."""
    elements: dict[str, list[TaskRow]] = {}
    for row in rows:
        if row.record.parent is not None:
            elements.setdefault(row.record.parent, []).append(row)
    if not elements:
        return rows
    keys = {row.record.key for row in rows}
    out = []
    for row in rows:
        parent = row.record.parent
        if parent in keys and row.category in (SUCCEEDED, CACHED):
            continue
        mine = elements.get(row.record.key)
        if mine is not None and row.record.status == MAPPED:
            row = replace(row, elements=tuple(mine))
        out.append(row)
    return out


def report_log(view: RunView, task: TaskView) -> tuple[str, str, str]:
    if task.record.resumed or task.record.status in (NOT_STARTED, CACHED, MAPPED):
        return "none", "", ""
    name = f"{view.log_dir.name}/{task.log_file}"
    if not view.logs_found:
        return "gone", name, ""
    if task.log_tail is None:
        return "missing", name, ""
    return "tail", name, ""


def run_meta(run: RunRecord, ended: float) -> list[tuple[str, str]]:
    meta = [
        ("started", fmt_time(run.started)),
        ("ended", fmt_time(run.ended) if run.ended else "not yet"),
        ("duration", fmt_secs(ended - run.started)),
        ("selection", run.selection),
        ("env", run.env),
        ("executor", f"{run.executor}, {run.workers} workers"),
        ("host", f"{run.host} (pid {run.pid})"),
        ("normandy", run.version),
        ("plan", run.fingerprint),
    ]
    if run.resumed_from:
        meta.insert(3, ("resumes", run.resumed_from))
    return meta


def notes(view: RunView) -> list[str]:
    out = []
    if view.run.status == RUNNING:
        out.append(
            f"This run is still going: this is what it had done at {fmt_time(view.generated)}."
        )
    if view.run.status == INTERRUPTED:
        out.append(
            "This run was interrupted (Ctrl-C, SIGTERM, or its normandy process was killed): "
            "tasks that were running are marked interrupted, later ones not started."
        )
    if view.run.reason:
        out.append(f"The run ended early: {view.run.reason}.")
    for problem in view.run.log_problems:
        out.append(f"A log file could not be written: {problem}.")
    if not view.logs_found:
        out.append(
            f"The log folder logs/{view.run.id}/ is gone or holds no logs: the tasks' log "
            "lines are not shown. Everything else comes from the run history."
        )
    resumed = sum(1 for t in view.tasks if t.record.resumed)
    if resumed:
        out.append(
            f"{resumed} task{'s' * (resumed != 1)} succeeded in run {view.run.resumed_from} "
            "and were not run again (not on the timeline)."
        )
    return out


def tally_of(view: RunView) -> dict[str, int]:
    """How the run's tasks ended, counted by category."""
    return tally((t.record.status, t.record.tolerated, t.record.resumed) for t in view.tasks)


def cards(view: RunView) -> list[tuple[str, str, str]]:
    """The totals: ``(what, number, category)``."""
    counts = tally_of(view)
    wall = view.ended - view.run.started
    totals = view.attempt_totals
    if totals is None:
        busy = sum(a.duration or 0.0 for t in view.tasks for a in t.attempts)
        ran = [t for t in view.tasks if t.attempts]
        totals = AttemptTotals(sum(len(t.attempts) for t in ran), len(ran), busy)
    busy = totals.seconds
    counted = sum(1 for t in view.tasks if t.record.status != MAPPED)  # a map: its elements
    out = [("tasks", str(counted), "")]
    out += [(name, str(counts[name]), name) for name in CATEGORIES if name in counts]
    out += [
        ("retries", str(totals.attempts - totals.tasks), ""),
        ("wall time", fmt_secs(wall), ""),
        ("task time", fmt_secs(busy), ""),
        ("parallelism", f"{busy / wall:.1f}×" if wall > 0 else "-", ""),
    ]
    imports = sum(t.record.import_duration for t in view.tasks)
    if imports >= 0.0005:  # workers that imported a process's module: not task time
        out.append(("import time", fmt_secs(imports), ""))
    return out


def problems(rows: list[TaskRow]) -> list[tuple[TaskRow, str]]:
    out = []
    for row in rows:
        if row.category in (FAILED, TOLERATED, INTERRUPTED):
            r = row.record
            out.append((row, f"{r.error_type}: {r.error_message}" if r.error_type else r.status))
    return out


def slowest(rows: list[TaskRow]) -> list[tuple[TaskRow, float]]:
    """The slowest tasks that ran, with their share of the slowest's time (0–100)."""
    timed = [r for r in rows if r.record.duration and r.attempts]
    timed.sort(key=lambda r: r.record.duration or 0.0, reverse=True)
    top = timed[:SLOWEST]
    if not top:
        return []
    longest = top[0].record.duration or 1.0
    return [(r, 100 * (r.record.duration or 0.0) / longest) for r in top]


def flows_with_data(view: RunView) -> list[dict[str, Any]]:
    """The run's plan with each task's variables and datasets as it read and wrote them."""
    data = {t.record.key: t for t in view.tasks}
    out = []
    for flow in view.run.plan:
        steps = []
        for step in flow["steps"]:
            tasks = []
            for task in step["tasks"]:
                seen = data.get(task["key"])
                reads = [a.name for a in seen.reads] if seen else []
                writes = [a.name for a in seen.writes] if seen else []
                name = f"{task['name']}[*]" if task.get("map") else task["name"]  # a map
                tasks.append(
                    {
                        **task,
                        "name": name,
                        "reads": reads,
                        "writes": writes,
                        "dataset_reads": seen.dataset_reads if seen else [],
                        "dataset_writes": seen.dataset_writes if seen else [],
                    }
                )
            steps.append({**step, "tasks": tasks})
        out.append({**flow, "steps": steps})
    return out


def picture(view: RunView, anchors: dict[str, str] | None = None) -> _graph.FlowsPicture | None:
    """The run's flows, tasks colored by how they ended, each linked to its row."""
    if anchors is None:
        anchors = {t.record.key: f"task-{i}" for i, t in enumerate(view.tasks)}
    return _graph.layout(
        flows_with_data(view), {t.record.key: t.category for t in view.tasks}, anchors
    )


def render_report(view: RunView) -> str:
    """The whole report of one run, as one self-contained HTML document."""
    rows = grouped(task_rows(view))
    return render(
        "report.html.j2",
        view=view,
        run=view.run,
        generated=view.generated,
        meta=run_meta(view.run, view.ended),
        notes=notes(view),
        cards=cards(view),
        problems=problems(rows),
        legend=LEGEND,
        timeline=_timeline.layout(view),
        timeline_intro=TIMELINE_INTRO,
        slowest=slowest(rows),
        picture=picture(view),
        flows_intro=FLOWS_INTRO,
        rows=rows,
    )
