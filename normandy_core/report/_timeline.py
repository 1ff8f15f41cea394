"""The timeline of a run, laid out: one lane per worker, one bar per task (a rectangle per
attempt, retries joined by a dashed line), colored by status, over the bands of the steps.
:func:`layout` computes where everything goes; the template ``_timeline.svg.j2`` draws it.

Time runs left to right, but not evenly: each step's band gets at least a minimum width,
the rest shared in proportion to time, so that a step of a few milliseconds next to one of
minutes is still seen, named and clickable. The axis marks where each step starts (time
since the first task started), and regular times inside the wide ones.

A lane is a worker *slot*: a worker process runs one attempt at a time, and one that
replaces a worker that crashed or was killed takes its slot, so a run of ``N`` workers
shows at most ``N`` lanes of known workers. A step's name is never cut: names that do not
fit their band go on rows of their own above the bands."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from normandy_core.report._data import Attempt, RunView, TaskView
from normandy_core.report._templates import fmt_secs, status_class
from normandy_core.status import FAILURES, SUCCEEDED

WIDTH = 1200
LABEL_W = 118
PLOT_X0 = LABEL_W
PLOT_W = WIDTH - LABEL_W - 14
ROW_H = 28
BAR_H = 20
LABEL_ROW_H = 15  # a row of step names above the bands
_CHAR_W = 6.6  # of the 11px labels, to decide whether a name fits in its bar
_BOLD_CHAR_W = 7.0  # of the step names (bold 11px)
Scale = Callable[[float], float]
"""A time -> its x in the drawing."""
_TICKS = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300,
    600, 900, 1800, 3600, 7200,
)  # fmt: skip
MIN_BAND = 90  # pixels: the least a step's band gets
_LABEL_ROOM = 44  # pixels between two tick labels
_EPSILON = 1e-6


@dataclass(frozen=True)
class Band:
    """A step's time: a shaded band, its name on row ``row`` above the bands."""

    x: float
    width: float
    parity: int
    step: str
    """``flow.step``"""
    label: str
    label_x: float
    label_y: float
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str | None


@dataclass(frozen=True)
class Lane:
    y: float
    height: float
    label: str
    detail: str
    """The worker processes that filled the slot (``pid 4121``, ``pids 4121, 4388``)."""


@dataclass(frozen=True)
class Rect:
    """An attempt's bar."""

    x: float
    y: float
    width: float
    css: str
    tooltip: str
    label: str | None
    """The task's name where it fits inside the bar."""
    light: bool


@dataclass(frozen=True)
class Bar:
    """A task's attempts, and the dashed lines from each failed attempt to its retry."""

    key: str
    status: str
    target: str
    rects: tuple[Rect, ...]
    links: tuple[tuple[float, float, float, float], ...]


@dataclass(frozen=True)
class Timeline:
    width: int
    height: float
    top: float
    """Where the lanes start: the step names and the axis' labels are above."""
    bands: tuple[Band, ...]
    ticks: tuple[Tick, ...]
    lanes: tuple[Lane, ...]
    bars: tuple[Bar, ...]

    @property
    def axis_label_y(self) -> float:
        return self.top - 10

    @property
    def rows(self) -> int:
        """How many rows of bars the lanes hold."""
        return round(sum(lane.height for lane in self.lanes) / ROW_H)


@dataclass(frozen=True)
class _Span:
    task: TaskView
    attempt: Attempt
    start: float
    end: float


def layout(view: RunView, *, tooltips: bool = True) -> Timeline | None:
    """The timeline, from the first task's start to the last one's end (what the run did
    before and after, starting and stopping workers, is left out); ``None`` when no task
    ran. ``tooltips``: each bar says what it is when hovered (a page of thousands of
    tasks may do without)."""
    spans = _spans(view, view.ended)
    if not spans:
        return None
    t0, t1 = min(s.start for s in spans), max(s.end for s in spans)
    steps = _steps(spans)
    x = _scale(list(steps.values()), t0, t1)
    labels, label_rows = _band_labels(steps, x)
    top = LABEL_ROW_H * label_rows + 26
    lanes = _lanes(spans)
    height = top + sum(len(rows) for _, rows in lanes) * ROW_H + 10
    bands = tuple(
        Band(
            x=x(lo),
            width=max(x(hi), x(lo) + 1) - x(lo),
            parity=i % 2,
            step=f"{flow}.{step}",
            label=labels[i][0],
            label_x=labels[i][1],
            label_y=13 + LABEL_ROW_H * labels[i][2],
            title=f"step {flow}.{step}: {fmt_secs(hi - lo)}",
        )
        for i, ((flow, step), (lo, hi)) in enumerate(steps.items())
    )
    out_lanes: list[Lane] = []
    placed: dict[tuple[str, int], tuple[float, float, float]] = {}  # (key, n) -> x0, x1, y
    y = top
    for number, (pids, rows) in enumerate(lanes, start=1):
        known = [p for p in pids if p is not None]
        if known:
            detail = ("pid " if len(known) == 1 else "pids ") + ", ".join(map(str, known))
            label = f"worker {number}"
        else:
            label, detail = "worker unknown", ""
        out_lanes.append(Lane(y, len(rows) * ROW_H, label, detail))
        for r, row in enumerate(rows):
            for span in row:
                bar_y = y + r * ROW_H + (ROW_H - BAR_H) / 2
                x0 = x(span.start)
                placed[(span.task.record.key, span.attempt.number)] = (
                    x0,
                    max(x(span.end), x0 + 2),
                    bar_y,
                )
        y += len(rows) * ROW_H
    return Timeline(
        width=WIDTH,
        height=height,
        top=top,
        bands=bands,
        ticks=_axis(list(steps.values()), t0, t1, x),
        lanes=tuple(out_lanes),
        bars=_bars(view, placed, tooltips),
    )


def _spans(view: RunView, t1: float) -> list[_Span]:
    """Each attempt that started, from its start to its end (``t1``: still going). A
    worker runs one attempt at a time: where the end the orchestrator recorded (when it
    heard of it) comes after the start of the worker's next attempt, it is cut there."""
    spans = []
    for task in view.tasks:
        for attempt in task.attempts:
            if attempt.started is None:
                continue
            end = attempt.ended if attempt.ended is not None else t1
            spans.append(_Span(task, attempt, attempt.started, max(end, attempt.started)))
    spans.sort(key=lambda s: (s.start, s.end))
    last: dict[int, int] = {}  # pid -> index of its latest span
    for i, span in enumerate(spans):
        pid = span.attempt.pid
        if pid is None:
            continue
        before = last.get(pid)
        if before is not None and spans[before].end > span.start:
            prev = spans[before]
            spans[before] = _Span(prev.task, prev.attempt, prev.start, span.start)
        last[pid] = i
    return spans


def _lanes(spans: list[_Span]) -> list[tuple[list[int | None], list[list[_Span]]]]:
    """Spans by worker slot, in the order slots first started something: a worker process
    takes the slot of one that ended before it started (the one it replaced), else a new
    one. Attempts of unknown workers go last, on as many rows as they overlap."""
    by_pid: dict[int, list[_Span]] = {}
    unknown: list[_Span] = []
    for span in spans:
        if span.attempt.pid is None:
            unknown.append(span)
        else:
            by_pid.setdefault(span.attempt.pid, []).append(span)
    slots: list[tuple[list[int | None], list[_Span]]] = []
    for pid, own in by_pid.items():  # in order of first start (spans are sorted)
        slot = next((s for s in slots if s[1][-1].end <= own[0].start + _EPSILON), None)
        if slot is None:
            slots.append(([pid], list(own)))
        else:
            slot[0].append(pid)
            slot[1].extend(own)
    lanes: list[tuple[list[int | None], list[list[_Span]]]] = [
        (pids, [own]) for pids, own in slots
    ]
    if unknown:
        rows: list[list[_Span]] = []
        for span in unknown:
            row = next((r for r in rows if r[-1].end <= span.start + _EPSILON), None)
            if row is None:
                rows.append([span])
            else:
                row.append(span)
        lanes.append(([None], rows))
    return lanes


def _steps(spans: list[_Span]) -> dict[tuple[str, str], tuple[float, float]]:
    """Each step's time, from its first start to its last end, in the order they ran."""
    steps: dict[tuple[str, str], list[float]] = {}
    for span in spans:
        key = (span.task.record.flow, span.task.record.step)
        lo_hi = steps.setdefault(key, [span.start, span.end])
        lo_hi[0], lo_hi[1] = min(lo_hi[0], span.start), max(lo_hi[1], span.end)
    ordered = sorted(steps.items(), key=lambda item: item[1][0])
    return {key: (lo, hi) for key, (lo, hi) in ordered}


def _band_labels(
    steps: dict[tuple[str, str], tuple[float, float]], x: Scale
) -> tuple[list[tuple[str, float, int]], int]:
    """Each step's name, whole (``flow › step`` where the run has several flows), its x
    and its row: the first row where it does not run into the name before it. Returns the
    labels and how many rows they take."""
    many_flows = len({flow for flow, _ in steps}) > 1
    ends: list[float] = []  # per row, where its last name ends
    labels = []
    for (flow, step), (lo, _) in steps.items():
        name = f"{flow} › {step}" if many_flows else step
        width = len(name) * _BOLD_CHAR_W
        left = max(min(x(lo) + 4, WIDTH - 4 - width), 4)
        row = next((r for r, end in enumerate(ends) if end + 8 <= left), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = left + width
        labels.append((name, left, row))
    return labels, max(len(ends), 1)


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


def _axis(bands: list[tuple[float, float]], t0: float, t1: float, x: Scale) -> tuple[Tick, ...]:
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
    out = []
    last_x, last_text = -math.inf, ""
    for t in sorted(ticks):
        px = x(t)
        text = _tick(t - t0)
        if text == last_text and 0.1 <= t - t0 < 10:  # steps milliseconds apart
            text = f"{t - t0:.3f}s"
        shown = None
        if px - last_x >= _LABEL_ROOM and text != last_text:
            shown = text
            last_x, last_text = px, text
        out.append(Tick(px, shown))
    return tuple(out)


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


def _bars(
    view: RunView, placed: dict[tuple[str, int], tuple[float, float, float]], tooltips: bool
) -> tuple[Bar, ...]:
    """One bar per task that ran: its attempts, and dashed lines from each failed
    attempt to its retry."""
    out = []
    for index, task in enumerate(view.tasks):
        record = task.record
        drawn = [(a, placed[(record.key, a.number)]) for a in task.attempts if a.started]
        if not drawn:
            continue
        links = tuple(
            (prev_x1, prev_y + BAR_H / 2, x0, y0 + BAR_H / 2)
            for (_, (_, prev_x1, prev_y)), (_, (x0, _, y0)) in zip(drawn, drawn[1:])
        )
        rects = []
        for attempt, (x0, x1, y0) in drawn:
            last = attempt.number == task.attempts[-1].number
            css = _attempt_class(task, attempt, last)
            name = record.task if attempt.number == 1 else f"{record.task} #{attempt.number}"
            fits = x1 - x0 > len(name) * _CHAR_W + 8
            rects.append(
                Rect(x0, y0, x1 - x0, css, _tooltip(task, attempt) if tooltips else "",
                     name if fits else None, "retried" in css)
            )  # fmt: skip
        out.append(Bar(record.key, task.category, f"task-{index}", tuple(rects), links))
    return tuple(out)


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
        parts.append(f"worker pid {attempt.pid}")
    if attempt.started:
        end = f" → {_clock(attempt.ended)}" if attempt.ended else ""
        parts.append(f"{_clock(attempt.started)}{end}")
    if attempt.error:
        parts.append(attempt.error)
    return "\n".join(parts)


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]
