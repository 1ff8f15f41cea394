"""The timeline of a run as inline SVG: one lane per worker process, one bar per task
(a group holding one rectangle per attempt, retries joined by a dashed line), colored by
status, over the bands of the steps.

Time runs left to right, but not evenly: each step's band gets at least a minimum width,
the rest shared in proportion to time, so that a step of a few milliseconds next to one of
minutes is still seen, named and clickable. The axis marks where each step starts (time
since the first task started), and regular times inside the wide ones."""

from __future__ import annotations

import bisect
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
_TICKS = (
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
)
MIN_BAND = 90  # pixels: the least a step's band gets
_LABEL_ROOM = 44  # pixels between two tick labels


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
    spans = _spans(bars)
    x = _scale(list(spans.values()), t0, t1)

    lanes = _lanes(bars)
    rows = sum(len(sub) for _, sub in lanes)
    height = TOP + rows * ROW_H + 10
    out = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'role="img" aria-label="timeline of the run\'s tasks by worker" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    out += _bands(spans, x, height)
    out += _axis(list(spans.values()), t0, t1, x, height)
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


def _spans(bars: list[_Bar]) -> dict[tuple[str, str], tuple[float, float]]:
    """Each step's time, from its first start to its last end, in the order they ran."""
    spans: dict[tuple[str, str], list[float]] = {}
    for bar in bars:
        key = (bar.task.record.flow, bar.task.record.step)
        lo_hi = spans.setdefault(key, [bar.start, bar.end])
        lo_hi[0], lo_hi[1] = min(lo_hi[0], bar.start), max(lo_hi[1], bar.end)
    ordered = sorted(spans.items(), key=lambda item: item[1][0])
    return {key: (lo, hi) for key, (lo, hi) in ordered}


def _scale(bands: list[tuple[float, float]], t0: float, t1: float) -> Scale:
    """Time -> x, linear between the bounds of the steps: each step at least
    :data:`MIN_BAND` wide (less where there are many), the rest of the width shared in
    proportion to time."""
    points = sorted({t0, t1, *(t for band in bands for t in band)})
    segments = list(zip(points, points[1:])) or [(t0, t0 + 1e-3)]
    inside = [any(lo <= a and b <= hi for lo, hi in bands) for a, b in segments]
    least = min(MIN_BAND, PLOT_W * 0.6 / max(sum(inside), 1))
    free = PLOT_W - least * sum(inside)
    total = sum(b - a for a, b in segments) or 1.0
    xs = [float(PLOT_X0)]
    for (a, b), band in zip(segments, inside):
        xs.append(xs[-1] + (least if band else 0.0) + free * (b - a) / total)
    starts = [a for a, _ in segments]

    def x(t: float) -> float:
        t = min(max(t, segments[0][0]), segments[-1][1])
        i = max(bisect.bisect_right(starts, t) - 1, 0)
        a, b = segments[i]
        share = (t - a) / (b - a) if b > a else 0.0
        return xs[i] + share * (xs[i + 1] - xs[i])

    return x


def _bands(spans: dict[tuple[str, str], tuple[float, float]], x: Scale, height: int) -> list[str]:
    """A shaded band per step, named at the top (shortened where it does not fit)."""
    many_flows = len({flow for flow, _ in spans}) > 1
    out = []
    for i, ((flow, step), (lo, hi)) in enumerate(spans.items()):
        x0, x1 = x(lo), max(x(hi), x(lo) + 1)
        name = f"{flow} › {step}" if many_flows else step
        room = int((x1 - x0 - 8) / _CHAR_W)
        shown = name if len(name) <= room else name[: max(room - 1, 0)] + "…"
        out.append(
            f'<g class="band band-{i % 2}" data-step="{esc(f"{flow}.{step}")}"><title>'
            f'{esc(f"step {flow}.{step}: {fmt_secs(hi - lo)}")}</title><rect x="{x0:.1f}" '
            f'y="0" width="{x1 - x0:.1f}" height="{height}"/>'
        )
        if room >= 2:
            out.append(f'<text class="band-label" x="{x0 + 4:.1f}" y="13">{esc(shown)}</text>')
        out.append("</g>")
    return out


def _axis(
    bands: list[tuple[float, float]], t0: float, t1: float, x: Scale, height: int
) -> list[str]:
    """Ticks where each step starts and at the end, and at regular times inside the steps
    wide enough for them; labels that would overlap are left out."""
    ticks = {t0, t1, *(lo for lo, _ in bands)}
    for lo, hi in bands:
        width = x(hi) - x(lo)
        if width < 3 * _LABEL_ROOM or hi <= lo:
            continue
        wanted = max(int(width / (2 * _LABEL_ROOM)), 2)
        step = next((s for s in _TICKS if (hi - lo) / s <= wanted), _TICKS[-1])
        n = math.floor((lo - t0) / step) + 1
        while t0 + n * step < hi:
            ticks.add(t0 + n * step)
            n += 1
    out = ['<g class="axis">']
    last_x, last_text = -math.inf, ""
    for t in sorted(ticks):
        px = x(t)
        out.append(f'<line x1="{px:.1f}" y1="{TOP - 6}" x2="{px:.1f}" y2="{height}"/>')
        text = _tick(t - t0)
        if text == last_text and 0.1 <= t - t0 < 10:  # steps milliseconds apart
            text = f"{t - t0:.3f}s"
        if px - last_x >= _LABEL_ROOM and text != last_text:
            out.append(f'<text x="{px:.1f}" y="{TOP - 10}">{text}</text>')
            last_x, last_text = px, text
    out.append("</g>")
    return out


def _tick(t: float) -> str:
    """Time since the first task started: ``0``, ``12ms``, ``0.26s``, ``4.5s``, ``3m05s``."""
    if t <= 0:
        return "0"
    if t < 0.1:
        return f"{t * 1000:.0f}ms"
    if t < 10:
        return f"{t:.2f}s".replace(".00s", "s")
    if t < 60:
        return f"{t:.1f}s".replace(".0s", "s")
    if t < 3600:
        return f"{int(t) // 60}m{int(t) % 60:02d}s"
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
    if attempt.import_duration >= 0.0005:  # before the bar: the worker imported the module
        parts.append(f"import {fmt_secs(attempt.import_duration)} before it (not in it)")
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
