"""The flows of a plan, laid out for an SVG picture: one row per flow, its steps left to
right joined by arrows, the tasks of a step stacked in its box (they run side by side),
and the variables a task writes (its ``writes``) as nodes after its step, joined to the
tasks of later steps that read them (their ``reads``). :func:`layout` computes where
everything goes; the template ``_flows.svg.j2`` draws it. Used by the run report (tasks
colored by how they ended, data as recorded), by ``normandy graph --format html`` (data
as declared) and by the web app."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from normandy_core.report._templates import status_class

MIN_STEP_W, MAX_STEP_W = 200, 330
GAP = 46
PAD = 16
HEAD_H = 28  # a step box's header
PILL_H = 24
PILL_GAP = 6
FLOW_HEAD = 30
FLOW_GAP = 26
_CHAR_W = 6.7  # of a task's name
DATA_GAP = 150  # between steps, where a flow's variables are drawn
WRAP_W = 1180  # the widest picture: a page's width, less its margins
MAX_PILLS = 24
"""A step of more tasks shows its first ``MAX_PILLS - 4`` and how many more there are."""
VAR_H, VAR_GAP = 18, 5
_VAR_CHAR_W = 6.0
_NAME_W, _CAPTION_W = 7.6, 5.8  # of a step's name (bold 12px), of its caption (10.5px)


@dataclass(frozen=True)
class Pill:
    """A task in its step's box; ``target``: the id of what a click on it shows."""

    key: str
    x: float
    y: float
    width: float
    css: str
    label: str
    title: str
    target: str | None


@dataclass(frozen=True)
class StepBox:
    x: float
    y: float
    width: float
    height: float
    name: str
    """As it fits in the header (the whole name is ``title``)."""
    caption: str
    title: str
    pills: tuple[Pill, ...]
    skipped: tuple[Pill, ...]
    """Entries left out by ``avoid_tags``."""


@dataclass(frozen=True)
class VarNode:
    name: str
    label: str
    x: float
    y: float
    width: float


@dataclass(frozen=True)
class FlowDrawing:
    name: str
    tags: str
    y: float
    """Where the flow's row starts."""
    steps: tuple[StepBox, ...]
    arrows: tuple[str, ...]
    """The ``d`` of each arrow from a step to the next."""
    variables: tuple[VarNode, ...]
    data_edges: tuple[str, ...]
    """The ``d`` of each curve from a task to a variable, or from a variable to a task."""


@dataclass(frozen=True)
class FlowsPicture:
    width: int
    height: float
    flows: tuple[FlowDrawing, ...]


def layout(
    flows: Sequence[Mapping[str, Any]],
    statuses: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
) -> FlowsPicture | None:
    """``flows`` as in ``Plan.to_dict()["flows"]``; ``statuses`` maps a task key to the
    category it is colored by, ``links`` to the id of the element a click on it shows.
    ``None`` where there is no flow. A flow whose steps do not fit :data:`WRAP_W` goes on
    in rows below, as text wraps: the picture is never wider than a page."""
    if not flows:
        return None
    names = [t["name"] for f in flows for s in f["steps"] for t in s["tasks"]]
    wanted = max(map(len, names), default=0) * _CHAR_W + 36
    steps = [s["name"] for f in flows for s in f["steps"]]
    wanted = max(wanted, max(map(len, steps), default=0) * _NAME_W + 28 + 6 * _CAPTION_W)
    step_w = int(min(max(wanted, MIN_STEP_W), MAX_STEP_W))
    width = max(max(PAD * 2 + _per_row(f, step_w) * (step_w + flow_gap(f)) for f in flows), 320)
    drawings = []
    y: float = PAD
    for flow in flows:
        drawing, height = _flow(flow, y, step_w, statuses or {}, links or {})
        drawings.append(drawing)
        y += height + FLOW_GAP
    return FlowsPicture(int(width), y - FLOW_GAP + PAD, tuple(drawings))


def flow_gap(flow: Mapping[str, Any]) -> int:
    """The room between steps: wider where the flow has variables to draw there."""
    has_data = any(t.get("writes") for s in flow["steps"] for t in s["tasks"])
    return DATA_GAP if has_data else GAP


def _per_row(flow: Mapping[str, Any], step_w: int) -> int:
    """How many of the flow's steps (each followed by its gap) go on one row."""
    fits = max(int((WRAP_W - 2 * PAD) // (step_w + flow_gap(flow))), 1)
    return max(min(fits, len(flow["steps"])), 1)


def _flow(
    flow: Mapping[str, Any],
    y: float,
    step_w: int,
    statuses: Mapping[str, str],
    links: Mapping[str, str],
) -> tuple[FlowDrawing, float]:
    gap = flow_gap(flow)
    per_row = _per_row(flow, step_w)
    pills: dict[str, tuple[float, float, float]] = {}  # key -> left, right, middle
    boxes: list[StepBox] = []
    arrows: list[str] = []
    nodes: list[VarNode] = []
    edges: list[str] = []
    where: dict[str, tuple[float, float, int]] = {}  # variable -> node's left, middle, row
    top = y + FLOW_HEAD
    all_steps = list(flow["steps"])
    for row, first in enumerate(range(0, max(len(all_steps), 1), per_row)):
        row_steps = all_steps[first : first + per_row]
        heights = [_step_height(step) for step in row_steps]
        data_height = 0.0
        for i, step in enumerate(row_steps):
            x = PAD + i * (step_w + gap)
            boxes.append(_step(step, x, top, step_w, heights[i], statuses, links, pills))
            mid = top + HEAD_H / 2
            if i:
                arrows.append(f"M{x - gap + 2},{mid} H{x - 3}")
            elif row:  # from the end of the row above, down to this one
                above = boxes[-2]
                turn = top - FLOW_GAP / 2
                arrows.append(
                    f"M{above.x + above.width + 2},{above.y + HEAD_H / 2} h{gap - 6} "
                    f"V{turn} H{x + step_w / 2} V{top - 3}"
                )
            data_height = max(
                data_height, _data(step, x, top, step_w, gap, row, pills, where, nodes, edges)
            )
        top += max([*heights, data_height], default=20) + FLOW_GAP
    drawing = FlowDrawing(
        name=flow["name"],
        tags=", ".join(flow.get("tags") or ()) or "no tags",
        y=y,
        steps=tuple(boxes),
        arrows=tuple(arrows),
        variables=tuple(nodes),
        data_edges=tuple(edges),
    )
    return drawing, top - FLOW_GAP - y


def _data(
    step: Mapping[str, Any],
    x: float,
    top: float,
    step_w: int,
    gap: int,
    row: int,
    pills: Mapping[str, tuple[float, float, float]],
    where: dict[str, tuple[float, float, int]],
    nodes: list[VarNode],
    edges: list[str],
) -> float:
    """The variables of one step: the tasks' reads, each an edge from the node of the
    variable (drawn after the earlier step that wrote it), then what it writes: a node
    after the step (below its arrow) and an edge to it. Returns the height they take."""
    width = gap - 24
    for task in step["tasks"]:
        end = pills.get(task["key"])
        for name in task.get("reads") or ():
            node = where.get(name)
            if node is None or end is None:
                continue
            if node[2] == row and node[0] < end[0]:
                edges.append(_curve(node[0] + width, node[1], end[0], end[2]))
            elif node[2] < row:  # written on a row above
                edges.append(_drop(node[0] + width / 2, node[1] + VAR_H / 2, end[0], end[2]))
    vx = x + step_w + 12
    vy = top + HEAD_H + 4
    for task in step["tasks"]:
        for name in task.get("writes") or ():
            start = pills.get(task["key"])
            where[name] = (vx, vy + VAR_H / 2, row)
            label = _fit(name, int((width - 10) / _VAR_CHAR_W))
            nodes.append(VarNode(name, label, vx, vy, width))
            if start is not None:
                edges.append(_curve(start[1], start[2], vx, vy + VAR_H / 2))
            vy += VAR_H + VAR_GAP
    return vy - top


def _drop(x1: float, y1: float, x2: float, y2: float) -> str:
    """From the bottom of a variable's node down to a task on a later row."""
    return f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + 80:.1f} {x2 - 60:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"


def _curve(x1: float, y1: float, x2: float, y2: float) -> str:
    bend = max((x2 - x1) / 2, 20)
    return (
        f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} "
        f"{x2:.1f},{y2:.1f}"
    )


def _shown(step: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    tasks = list(step["tasks"])
    return tasks if len(tasks) <= MAX_PILLS else tasks[: MAX_PILLS - 4]


def _step_height(step: Mapping[str, Any]) -> float:
    hidden = len(step["tasks"]) > len(_shown(step))
    pills = len(_shown(step)) + hidden + len(step.get("skipped") or ())
    return HEAD_H + pills * (PILL_H + PILL_GAP) + PILL_GAP


def _step(
    step: Mapping[str, Any],
    x: float,
    y: float,
    step_w: int,
    height: float,
    statuses: Mapping[str, str],
    links: Mapping[str, str],
    pills: dict[str, tuple[float, float, float]],
) -> StepBox:
    """The step's box and its tasks' pills; notes each pill's ``(left, right, middle)``
    in ``pills``."""
    n = len(step["tasks"])
    caption = f"{n} task{'s' * (n != 1)}" + (" in parallel" if n > 1 else "")
    room = (step_w - 28) / _NAME_W  # characters of the step's name that fit in its header
    if len(step["name"]) + len(caption) * _CAPTION_W / _NAME_W > room:
        caption = f"×{n}"
    name = _fit(step["name"], int(room - len(caption) * _CAPTION_W / _NAME_W))
    out = []
    py = y + HEAD_H
    for task in _shown(step):
        status = statuses.get(task["key"])
        css = f"task {status_class(status)}" if status else "task"
        label = _fit(task["name"], int((step_w - 32) / _CHAR_W))
        title = _task_title(task, status)
        out.append(
            Pill(task["key"], x + 8, py, step_w - 16, css, label, title, links.get(task["key"]))
        )
        pills[task["key"]] = (x + 8, x + step_w - 8, py + PILL_H / 2)
        py += PILL_H + PILL_GAP
    skipped = []
    more = n - len(out)
    if more:
        skipped.append(
            Pill("", x + 8, py, step_w - 16, "task more", f"… {more} more tasks",
                 f"{more} more tasks of step {step['name']}: see the list of tasks", None)
        )  # fmt: skip
        py += PILL_H + PILL_GAP
    for skip in step.get("skipped") or ():
        label = f"{_fit(skip, int((step_w - 32) / _CHAR_W) - 12)} (avoid_tags)"
        skipped.append(
            Pill("", x + 8, py, step_w - 16, "task skipped", label,
                 f"{skip}: left out by avoid_tags", None)
        )  # fmt: skip
        py += PILL_H + PILL_GAP
    title = f"step {step['name']}: {n} task{'s' * (n != 1)}"
    return StepBox(x, y, step_w, height, name, caption, title, tuple(out), tuple(skipped))


def _task_title(task: Mapping[str, Any], status: str | None) -> str:
    lines = [task["key"], f"process {task['process']}"]
    if status:
        lines.append(status)
    if task.get("reads"):
        lines.append("in: " + ", ".join(task["reads"]))
    if task.get("writes"):
        lines.append("out: " + ", ".join(task["writes"]))
    if task.get("params"):
        lines.append("params " + json.dumps(task["params"], sort_keys=True, default=str))
    options = [
        f"retries {task['retries']}" if task.get("retries") else "",
        "error_tolerance" if task.get("error_tolerance") else "",
        f"timeout {task['timeout']:g}s" if task.get("timeout") else "",
    ]
    if any(options):
        lines.append(", ".join(o for o in options if o))
    return "\n".join(lines)


def _fit(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(chars - 1, 1)] + "…"
