"""The run report's sections: the run, its totals and problems, the timeline, the slowest
tasks, the flows, and every task with its params, attempts, error and the tail of its
log."""

from __future__ import annotations

import json
from typing import Any

from normandy_core.history import VariableAccess
from normandy_core.report._data import RunView, TaskView
from normandy_core.report._graph import render_flows
from normandy_core.report._html import esc, fmt_secs, fmt_time, page, status_class
from normandy_core.report._timeline import render_timeline
from normandy_core.status import (
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
from normandy_core.units import format_size

_LEGEND = (
    (SUCCEEDED, "succeeded"),
    (FAILED, "failed"),
    (TOLERATED, "failed, tolerated"),
    (CRASHED, "crashed"),
    (TIMED_OUT, "timed out"),
    (INTERRUPTED, "interrupted"),
)
SLOWEST = 5
ELEMENTS_LISTED = 200
"""The elements of a map listed in its group, at most (those that did not succeed have
rows of their own)."""


def render_report(view: RunView) -> str:
    """The whole report of one run, as one self-contained HTML document."""
    run = view.run
    body = [
        _header(view),
        _notes(view),
        _totals(view),
        _problems(view),
        _section(
            "timeline",
            "Timeline",
            "Each bar is a task, on the worker process that ran it; a failed attempt "
            "that was retried is drawn hollow, joined to its retry by a dashed line. "
            "Shaded bands are the steps; times count from the first task's start. Hover a "
            "bar for details, click it for the task.",
            _legend() + render_timeline(view),
        ),
        _slowest(view),
        _section(
            "flows",
            "Flows",
            "Steps run left to right; the tasks of a step run side by side; the variables "
            "each task wrote, joined to the later tasks that read them, as this run did.",
            render_flows(
                _with_data(run.plan, view),
                {t.record.key: t.category for t in view.tasks},
                {t.record.key: f"task-{i}" for i, t in enumerate(view.tasks)},
            ),
        ),
        _tasks(view),
    ]
    title = f"normandy run {run.id}: {run.status}"
    return page(title, "\n".join(b for b in body if b), view.generated)


def _section(anchor: str, title: str, intro: str, content: str) -> str:
    return (
        f'<section id="{anchor}"><h2>{esc(title)}</h2><p class="intro">{esc(intro)}</p>'
        f"{content}</section>"
    )


def _header(view: RunView) -> str:
    run = view.run
    meta = [
        ("started", fmt_time(run.started)),
        ("ended", fmt_time(run.ended) if run.ended else "not yet"),
        ("duration", fmt_secs(view.ended - run.started)),
        ("selection", run.selection),
        ("env", run.env),
        ("executor", f"{run.executor}, {run.workers} workers"),
        ("host", f"{run.host} (pid {run.pid})"),
        ("normandy", run.version),
        ("plan", run.fingerprint),
    ]
    if run.resumed_from:
        meta.insert(3, ("resumes", run.resumed_from))
    items = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in meta)
    return (
        '<header class="run-head"><div class="title"><span class="kicker">Normandy run</span>'
        f'<h1>{esc(run.id)}</h1><span class="badge {status_class(run.status)}">'
        f'{esc(run.status)}</span></div><dl class="meta">{items}</dl></header>'
    )


def _notes(view: RunView) -> str:
    notes = []
    if view.run.status == RUNNING:
        notes.append(
            f"This run is still going: this report is what it had done at "
            f"{fmt_time(view.generated)}."
        )
    if view.run.status == INTERRUPTED:
        notes.append(
            "This run was interrupted (Ctrl-C, SIGTERM, or its normandy process was killed): "
            "tasks that were running are marked interrupted, later ones not started."
        )
    if view.run.reason:
        notes.append(f"The run ended early: {view.run.reason}.")
    for problem in view.run.log_problems:
        notes.append(f"A log file could not be written: {problem}.")
    if not view.logs_found:
        notes.append(
            f"The log folder logs/{view.run.id}/ is gone or holds no logs: the tasks' log "
            "lines are not shown. Everything else comes from the run history."
        )
    resumed = sum(1 for t in view.tasks if t.record.resumed)
    if resumed:
        notes.append(
            f"{resumed} task{'s' * (resumed != 1)} succeeded in run {view.run.resumed_from} "
            "and were not run again (not on the timeline)."
        )
    return "".join(f'<p class="note">{esc(n)}</p>' for n in notes)


def _totals(view: RunView) -> str:
    counts = tally((t.record.status, t.record.tolerated, t.record.resumed) for t in view.tasks)
    wall = view.ended - view.run.started
    busy = sum(a.duration or 0.0 for t in view.tasks for a in t.attempts)
    ran = [t for t in view.tasks if t.attempts]
    attempts = sum(len(t.attempts) for t in ran)
    counted = sum(1 for t in view.tasks if t.record.status != MAPPED)  # a map: its elements
    cards = [("tasks", str(counted), "")]
    cards += [
        (name, str(counts[name]), status_class(name)) for name in CATEGORIES if name in counts
    ]
    cards += [
        ("retries", str(attempts - len(ran)), ""),
        ("wall time", fmt_secs(wall), ""),
        ("task time", fmt_secs(busy), ""),
        ("parallelism", f"{busy / wall:.1f}×" if wall > 0 else "-", ""),
    ]
    imports = sum(t.record.import_duration for t in view.tasks)
    if imports >= 0.0005:  # workers that imported a process's module: not task time
        cards.append(("import time", fmt_secs(imports), ""))
    items = "".join(
        f'<div class="card {css}"><span class="n">{esc(n)}</span><span class="what">'
        f"{esc(what)}</span></div>"
        for what, n, css in cards
    )
    return f'<section id="totals" class="cards">{items}</section>'


def _problems(view: RunView) -> str:
    rows = []
    for i, t in enumerate(view.tasks):
        if t.category not in (FAILED, TOLERATED, INTERRUPTED):
            continue
        r = t.record
        error = f"{r.error_type}: {r.error_message}" if r.error_type else r.status
        rows.append(
            f'<li class="{status_class(t.category)}"><a href="#task-{i}" data-target="task-{i}">'
            f'{esc(r.key)}</a> <span class="badge {status_class(t.category)}">'
            f"{esc(_status_text(t))}</span> <code>{esc(error)}</code></li>"
        )
    if not rows:
        return ""
    return f'<section id="problems"><h2>What went wrong</h2><ul>{"".join(rows)}</ul></section>'


def _legend() -> str:
    items = "".join(
        f'<span><i class="swatch {status_class(s)}"></i>{esc(label)}</span>' for s, label in _LEGEND
    )
    return (
        f'<div class="legend">{items}<span><i class="swatch s-failed retried"></i>'
        "failed attempt, retried</span></div>"
    )


def _slowest(view: RunView) -> str:
    timed = [(i, t) for i, t in enumerate(view.tasks) if t.record.duration and t.attempts]
    timed.sort(key=lambda it: it[1].record.duration or 0.0, reverse=True)
    top = timed[:SLOWEST]
    if not top:
        return ""
    longest = top[0][1].record.duration or 1.0
    rows = "".join(
        f'<li><a href="#task-{i}" data-target="task-{i}">{esc(t.record.key)}</a>'
        f'<span class="meter"><i class="{status_class(t.category)}" '
        f'style="width:{100 * (t.record.duration or 0) / longest:.1f}%"></i></span>'
        f"<span>{fmt_secs(t.record.duration)}</span></li>"
        for i, t in top
    )
    return _section(
        "slowest",
        "Slowest tasks",
        "From a task's first start to its last end, retries included.",
        f'<ol class="slowest">{rows}</ol>',
    )


def _status_text(task: TaskView) -> str:
    r = task.record
    if r.waiting and r.status != RUNNING:
        return f"waiting (pool {r.waiting})"
    return label(r.status, r.tolerated, r.resumed)


def _tasks(view: RunView) -> str:
    """Every task; a map's elements as a group (its row), but those that did not succeed,
    which have rows of their own."""
    elements: dict[str, list[TaskView]] = {}
    for t in view.tasks:
        if t.record.parent is not None:
            elements.setdefault(t.record.parent, []).append(t)
    rows = "".join(
        _task(i, t, view, elements.get(t.record.key))
        for i, t in enumerate(view.tasks)
        if t.record.parent is None or t.category not in (SUCCEEDED, "cached")
    )
    tools = (
        '<div class="tools"><input id="filter" type="search" placeholder="Filter tasks by '
        'name or status" aria-label="filter tasks"><label><input id="problems-only" '
        'type="checkbox"> problems only</label></div>'
    )
    head = (
        '<div class="task-head"><span></span><span>task</span><span>status</span>'
        "<span>attempts</span><span>duration</span><span>worker</span></div>"
    )
    return _section(
        "tasks",
        f"Tasks ({len(view.tasks)})",
        "Open a task for its params, attempts, error and the end of its log.",
        tools + head + f'<div class="task-list">{rows}</div>',
    )


def _task(
    index: int, task: TaskView, view: RunView, elements: list[TaskView] | None = None
) -> str:
    r = task.record
    cat = task.category
    open_ = " open" if cat == FAILED else ""
    name, status, attempts = r.task, _status_text(task), r.attempts
    if elements is not None:  # a map's group: its elements' tally
        name = f"{r.task}[*]"
        counts = tally((e.record.status, e.record.tolerated, e.record.resumed) for e in elements)
        status = describe_tally(counts) + ("; not collected" if r.error_type else "")
        attempts = sum(e.record.attempts for e in elements)
    summary = (
        f'<summary><i class="dot {status_class(cat)}"></i><span class="key">'
        f'{esc(r.flow)} <span class="sep">›</span> {esc(r.step)} <span class="sep">›</span> '
        f"<strong>{esc(name)}</strong></span>"
        f'<span class="badge {status_class(cat)}">{esc(status)}</span>'
        f"<span>{attempts}</span><span>{fmt_secs(r.duration)}</span>"
        f"<span>{esc(r.pid or '-')}</span></summary>"
    )
    facts = [
        ("process", esc(r.process)),
        ("params", f"<pre>{esc(_json(r.params))}</pre>" if r.params else "-"),
        ("started", esc(fmt_time(r.started))),
        ("ended", esc(fmt_time(r.ended))),
    ]
    if r.import_duration >= 0.0005:
        took = fmt_secs(r.import_duration)
        facts.append(("import", f"{took} before its work (not in its duration)"))
    if r.waited >= 0.0005:
        facts.append(("waited", f"{fmt_secs(r.waited)} for a pool's units (confs.pools)"))
    if elements is not None:
        facts.append(("elements", _elements(elements)))
    if task.reads or task.writes:
        facts.append(("in", _accesses(task.reads)))
        facts.append(("out", _accesses(task.writes)))
    elif r.variables:
        facts.append(("wrote", esc(", ".join(r.variables))))
    body = ['<dl class="facts">']
    body += [f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in facts]
    body.append("</dl>")
    if task.attempts and (len(task.attempts) > 1 or cat != SUCCEEDED):
        body.append(_attempts(task))
    if r.traceback or r.error_type:
        text = r.traceback or f"{r.error_type}: {r.error_message}"
        body.append(f"<h4>Error ({esc(r.error_kind or r.status)})</h4>")
        body.append(f'<pre class="traceback">{esc(text.rstrip())}</pre>')
    body.append(_log(task, view))
    return (
        f'<details class="task-row" id="task-{index}" data-key="{esc(r.key)}" '
        f'data-status="{esc(cat)}"{open_}>{summary}<div class="task-body">'
        + "".join(body)
        + "</div></details>"
    )


def _elements(elements: list[TaskView]) -> str:
    """A map's elements: name, status and duration, the first :data:`ELEMENTS_LISTED`."""
    rows = "".join(
        f"<tr><td><code>{esc(e.record.task)}</code></td><td><span class=\"badge "
        f'{status_class(e.category)}">{esc(_status_text(e))}</span></td>'
        f"<td>{fmt_secs(e.record.duration)}</td></tr>"
        for e in elements[:ELEMENTS_LISTED]
    )
    more = len(elements) - ELEMENTS_LISTED
    tail = f'<p class="muted">and {more} more (normandy runs RUN_ID --json)</p>' if more > 0 else ""
    return f'<table class="attempts"><tbody>{rows}</tbody></table>{tail}'


def _attempts(task: TaskView) -> str:
    rows = "".join(
        f'<tr><td>{a.number}</td><td><span class="badge {status_class(a.status)}">'
        f"{esc(a.status)}</span></td><td>{esc(fmt_time(a.started))}</td>"
        f"<td>{fmt_secs(a.duration)}</td><td>{esc(a.pid or '-')}</td>"
        f"<td><code>{esc(a.error or '')}</code></td></tr>"
        for a in task.attempts
    )
    return (
        '<h4>Attempts</h4><table class="attempts"><thead><tr><th>#</th><th>status</th>'
        "<th>started</th><th>duration</th><th>worker</th><th>error</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _log(task: TaskView, view: RunView) -> str:
    if task.record.resumed or task.record.status in (NOT_STARTED, MAPPED):
        return ""
    name = f"{view.log_dir.name}/{task.log_file}"
    if not view.logs_found:
        return '<p class="muted">Log not available: the run\'s log folder is gone.</p>'
    if task.log_tail is None:
        return f'<p class="muted">No log file {esc(name)}.</p>'
    what = f"last {len(task.log_tail)} lines" if task.log_tail else "empty"
    return (
        f'<h4>Log <span class="muted">{esc(name)}, {what}</span></h4>'
        f'<pre class="log">{esc(chr(10).join(task.log_tail))}</pre>'
    )


def _accesses(accesses: tuple[VariableAccess, ...]) -> str:
    """Variables with their sizes (and types, for what was written)."""
    if not accesses:
        return "-"
    items = []
    for a in accesses:
        kind = f", {esc(a.type.rpartition('.')[2])}" if a.type else ""
        size = f" <span class=\"muted\">({format_size(a.size)}{kind})</span>" if a.size else ""
        items.append(f'<code title="{esc(a.hash or "")}">{esc(a.name)}</code>{size}')
    return ", ".join(items)


def _with_data(flows: list[dict[str, Any]], view: RunView) -> list[dict[str, Any]]:
    """The run's plan with each task's variables as it read and wrote them."""
    data = {t.record.key: t for t in view.tasks}
    out = []
    for flow in flows:
        steps = []
        for step in flow["steps"]:
            tasks = []
            for task in step["tasks"]:
                seen = data.get(task["key"])
                reads = [a.name for a in seen.reads] if seen else []
                writes = [a.name for a in seen.writes] if seen else []
                tasks.append({**task, "reads": reads, "writes": writes})
            steps.append({**step, "tasks": tasks})
        out.append({**flow, "steps": steps})
    return out


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
