"""The timeline of a run as inline SVG: one lane per worker process, one bar per task
(a group holding one rectangle per attempt, retries joined by a dashed line), colored by
status, over the bands of the steps."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from normandy_core.report._data import Attempt, RunView, TaskView
from normandy_core.report._html import esc, fmt_secs, status_class
from normandy_core.status import FAILURES, SUCCEEDED

WIDTH = 1200
LABEL_W = 118
PLOT_X0 = LABEL_W
PLOT_W = WIDTH - LABEL_W - 14
TOP = 40  # step names, then tick labels
ROW_H = 28
BAR_H = 20
_CHAR_W = 6.6  # of the 11px labels, to decide whether a name fits in its bar
Scale = Callable[[float], float]
"""A time -> its x in the drawing."""
_TICKS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


@dataclass(frozen=True)
class _Bar:
    task: TaskView
    attempt: Attempt
    start: float
    end: float
    last: bool


def render_timeline(view: RunView) -> str:
    """The timeline, from the first task's start to the last one's end (what the run did
    before and after, starting and stopping workers, is left out)."""
    bars = _bars(view, view.ended)
    if not bars:
        return '<p class="empty">No task ran in this run: the timeline is empty.</p>'
    t0, t1 = min(b.start for b in bars), max(b.end for b in bars)
    span = max(t1 - t0, 1e-3)

    def x(t: float) -> float:
        return PLOT_X0 + (min(max(t, t0), t1) - t0) / span * PLOT_W

    lanes = _lanes(bars)
    rows = sum(len(sub) for _, sub in lanes)
    height = TOP + rows * ROW_H + 10
    out = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'role="img" aria-label="timeline of the run\'s tasks by worker" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    out += _bands(view, bars, x, height)
    out += _axis(span, height)
    y = TOP
    placed: dict[tuple[str, int], tuple[float, float, float]] = {}  # (key, n) -> x0, x1, y
    for pid, sub_rows in lanes:
        label = f"worker {pid}" if pid is not None else "worker unknown"
        lane_h = len(sub_rows) * ROW_H
        out.append(
            f'<g class="lane"><rect class="lane-bg" x="0" y="{y}" width="{WIDTH}" '
            f'height="{lane_h}"/><text class="lane-label" x="8" y="{y + ROW_H / 2 + 4}">'
            f"{esc(label)}</text></g>"
        )
        for r, row in enumerate(sub_rows):
            for bar in row:
                top = y + r * ROW_H + (ROW_H - BAR_H) / 2
                x0, x1 = x(bar.start), max(x(bar.end), x(bar.start) + 2)
                placed[(bar.task.record.key, bar.attempt.number)] = (x0, x1, top)
        y += lane_h
    out += _task_groups(view, placed)
    out.append("</svg>")
    return "\n".join(out)


def _bars(view: RunView, t1: float) -> list[_Bar]:
    bars = []
    for task in view.tasks:
        for attempt in task.attempts:
            if attempt.started is None:
                continue
            end = attempt.ended if attempt.ended is not None else t1
            last = attempt.number == task.attempts[-1].number
            bars.append(_Bar(task, attempt, attempt.started, max(end, attempt.started), last))
    return bars


def _lanes(bars: list[_Bar]) -> list[tuple[int | None, list[list[_Bar]]]]:
    """Bars by worker, lanes in the order workers first started something; within a lane,
    bars that overlap in time (a worker that is not known) get rows of their own."""
    by_pid: dict[int | None, list[_Bar]] = {}
    for bar in sorted(bars, key=lambda b: (b.start, b.end)):
        by_pid.setdefault(bar.attempt.pid, []).append(bar)
    lanes = []
    for pid, lane_bars in by_pid.items():
        rows: list[list[_Bar]] = []
        for bar in lane_bars:
            row = next((r for r in rows if r[-1].end <= bar.start + 1e-6), None)
            if row is None:
                rows.append([bar])
            else:
                row.append(bar)
        lanes.append((pid, rows))
    unknown = [lane for lane in lanes if lane[0] is None]
    return [lane for lane in lanes if lane[0] is not None] + unknown


def _bands(view: RunView, bars: list[_Bar], x: Scale, height: int) -> list[str]:
    """A shaded band per step, from its first start to its last end, named at the top."""
    spans: dict[tuple[str, str], list[float]] = {}
    for bar in bars:
        key = (bar.task.record.flow, bar.task.record.step)
        lo_hi = spans.setdefault(key, [bar.start, bar.end])
        lo_hi[0], lo_hi[1] = min(lo_hi[0], bar.start), max(lo_hi[1], bar.end)
    many_flows = len({flow for flow, _ in spans}) > 1
    out = []
    for i, ((flow, step), (lo, hi)) in enumerate(spans.items()):
        x0, x1 = x(lo), max(x(hi), x(lo) + 1)
        name = f"{flow} › {step}" if many_flows else step
        out.append(
            f'<g class="band band-{i % 2}"><title>{esc(f"step {flow}.{step}: {fmt_secs(hi - lo)}")}'
            f'</title><rect x="{x0:.1f}" y="0" width="{x1 - x0:.1f}" height="{height}"/>'
        )
        if (x1 - x0) > len(name) * _CHAR_W + 6:
            out.append(f'<text class="band-label" x="{x0 + 4:.1f}" y="13">{esc(name)}</text>')
        out.append("</g>")
    return out


def _axis(span: float, height: int) -> list[str]:
    step = next((s for s in _TICKS if span / s <= 10), math.ceil(span / 10 / 3600) * 3600)
    out = ['<g class="axis">']
    n = 0
    while n * step <= span + 1e-9:
        t = n * step
        px = PLOT_X0 + t / span * PLOT_W
        out.append(
            f'<line x1="{px:.1f}" y1="{TOP - 6}" x2="{px:.1f}" y2="{height}"/>'
            f'<text x="{px:.1f}" y="{TOP - 10}">{_tick(t, step)}</text>'
        )
        n += 1
    out.append("</g>")
    return out


def _tick(t: float, step: float) -> str:
    if step < 1:
        return f"{t:.1f}s"
    if t < 60 or step < 60:
        return f"{t:.0f}s" if t < 60 else f"{int(t) // 60}m{int(t) % 60:02d}s"
    if t < 3600:
        return f"{int(t) // 60}m"
    return f"{int(t) // 3600}h{int(t) % 3600 // 60:02d}"


def _task_groups(
    view: RunView, placed: dict[tuple[str, int], tuple[float, float, float]]
) -> list[str]:
    """One ``<g class="bar">`` per task that ran: its attempts, and dashed lines from each
    failed attempt to its retry."""
    out = []
    for index, task in enumerate(view.tasks):
        record = task.record
        drawn = [(a, placed[(record.key, a.number)]) for a in task.attempts if a.started]
        if not drawn:
            continue
        out.append(
            f'<g class="bar" data-task="{esc(record.key)}" data-status="{esc(task.category)}" '
            f'data-target="task-{index}">'
        )
        for (_, (_, prev_x1, prev_y)), (_, (x0, _, y0)) in zip(drawn, drawn[1:]):
            out.append(
                f'<line class="retry-link" x1="{prev_x1:.1f}" y1="{prev_y + BAR_H / 2:.1f}" '
                f'x2="{x0:.1f}" y2="{y0 + BAR_H / 2:.1f}"/>'
            )
        for attempt, (x0, x1, y0) in drawn:
            last = attempt.number == task.attempts[-1].number
            css = _attempt_class(task, attempt, last)
            out.append(
                f'<rect class="attempt {css}" x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" '
                f'height="{BAR_H}" rx="3"><title>{esc(_tooltip(task, attempt))}</title></rect>'
            )
            name = record.task if attempt.number == 1 else f"{record.task} #{attempt.number}"
            if x1 - x0 > len(name) * _CHAR_W + 8:
                light = " on-light" if "retried" in css else ""
                out.append(
                    f'<text class="bar-label{light}" x="{x0 + 4:.1f}" y="{y0 + BAR_H / 2 + 4:.1f}">'
                    f"{esc(name)}</text>"
                )
        out.append("</g>")
    return out


def _attempt_class(task: TaskView, attempt: Attempt, last: bool) -> str:
    if attempt.status in FAILURES:
        if not last:
            return f"{status_class(attempt.status)} retried"
        if task.record.tolerated:
            return "s-tolerated"
    if attempt.status == SUCCEEDED:
        return "s-succeeded"
    return status_class(attempt.status)


def _tooltip(task: TaskView, attempt: Attempt) -> str:
    r = task.record
    parts = [r.key, f"attempt {attempt.number} of {len(task.attempts)}: {attempt.status}"]
    if attempt.status in FAILURES and r.tolerated and attempt.number == len(task.attempts):
        parts[-1] += " (tolerated)"
    if attempt.duration is not None:
        parts.append(fmt_secs(attempt.duration))
    if attempt.pid:
        parts.append(f"worker {attempt.pid}")
    if attempt.started:
        end = f" → {_clock(attempt.ended)}" if attempt.ended else ""
        parts.append(f"{_clock(attempt.started)}{end}")
    if attempt.error:
        parts.append(attempt.error)
    return "\n".join(parts)


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]
