"""The flows of a plan as inline SVG: one row per flow, its steps left to right joined by
arrows, the tasks of a step stacked in its box (they run side by side), and the variables
a task writes (its ``writes``) as nodes after its step, joined to the tasks of later steps
that read them (their ``reads``). Datasets are nodes of their own kind: those a task
writes (``dataset_writes``) after its step, like variables; those the flow reads without
writing them first (``dataset_reads``: its sources, files made elsewhere) in a column
before its first step. Used by the run report (tasks colored by how they ended, data as
recorded) and by ``normandy graph --format html`` (data as declared)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from normandy_core.report._html import esc, status_class

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
VAR_H, VAR_GAP = 18, 5
_VAR_CHAR_W = 6.0
_NAME_W, _CAPTION_W = 7.6, 5.8  # of a step's name (bold 12px), of its caption (10.5px)


def render_flows(
    flows: Sequence[Mapping[str, Any]],
    statuses: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
    datasets: Mapping[str, str] | None = None,
) -> str:
    """``flows`` as in ``Plan.to_dict()["flows"]``, each task with its ``reads`` and
    ``writes`` (variables) and ``dataset_reads`` and ``dataset_writes``; ``statuses``
    maps a task key to the category it is colored by, ``links`` to the id of the element
    a click on it shows, ``datasets`` a dataset's name to what it is (``csv
    data/companies.csv``, shown on hover)."""
    if not flows:
        return '<p class="empty">No flow.</p>'
    names = [t["name"] for f in flows for s in f["steps"] for t in s["tasks"]]
    step_w = int(min(max(max(map(len, names), default=0) * _CHAR_W + 36, MIN_STEP_W), MAX_STEP_W))
    width = max(max(_width(f, step_w) for f in flows), 320)
    parts: list[str] = []
    y: float = PAD
    for flow in flows:
        block, height = _flow(flow, y, step_w, statuses, links, datasets or {})
        parts.extend(block)
        y += height + FLOW_GAP
    height = y - FLOW_GAP + PAD
    return (
        f'<div class="graph-scroll"><svg class="graph" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="flows, steps and tasks" '
        'xmlns="http://www.w3.org/2000/svg">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker>'
        "</defs>" + "".join(parts) + "</svg></div>"
    )


def _flow(
    flow: Mapping[str, Any],
    y: float,
    step_w: int,
    statuses: Mapping[str, str] | None,
    links: Mapping[str, str] | None,
    datasets: Mapping[str, str],
) -> tuple[list[str], float]:
    tags = ", ".join(flow.get("tags") or ()) or "no tags"
    out = [
        f'<g class="flow" data-flow="{esc(flow["name"])}">',
        f'<text class="flow-name" x="{PAD}" y="{y + 16}">{esc(flow["name"])}'
        f'<tspan class="flow-tags" dx="10">{esc(tags)}</tspan></text>',
    ]
    top = y + FLOW_HEAD
    gap = flow_gap(flow)
    lead = flow_lead(flow)
    heights = [_step_height(step) for step in flow["steps"]]
    if not flow["steps"]:
        out.append(f'<text class="muted" x="{PAD}" y="{top + 14}">no step to run</text>')
    pills: dict[str, tuple[float, float, float]] = {}
    steps: list[str] = []
    for i, step in enumerate(flow["steps"]):
        x = PAD + lead + i * (step_w + gap)
        steps.extend(_step(step, x, top, step_w, heights[i], statuses, links, pills))
        if i:
            mid = top + HEAD_H / 2
            steps.append(
                f'<line class="edge" x1="{x - gap + 2}" y1="{mid}" x2="{x - 3}" y2="{mid}" '
                'marker-end="url(#arrow)"/>'
            )
    edges, nodes, data_height = _data(flow, top, step_w, gap, lead, pills, datasets)
    out += [*edges, *steps, *nodes, "</g>"]  # the data's edges under the boxes
    return out, FLOW_HEAD + max([*heights, data_height], default=20)


def _width(flow: Mapping[str, Any], step_w: int) -> int:
    """A flow's width: its sources, its steps and what its last step writes."""
    gap = flow_gap(flow)
    steps = flow["steps"]
    trailing = steps and any(
        t.get("writes") or t.get("dataset_writes") for t in steps[-1]["tasks"]
    )
    return PAD * 2 + flow_lead(flow) + len(steps) * (step_w + gap) - (0 if trailing else gap)


def flow_gap(flow: Mapping[str, Any]) -> int:
    """The room between steps: wider where the flow has variables or datasets to draw
    there."""
    has_data = any(
        t.get("writes") or t.get("dataset_writes") for s in flow["steps"] for t in s["tasks"]
    )
    return DATA_GAP if has_data else GAP


def flow_lead(flow: Mapping[str, Any]) -> int:
    """The room before the first step: for the datasets the flow reads without writing
    them first (its sources), if any."""
    return DATA_GAP if sources(flow) else 0


def sources(flow: Mapping[str, Any]) -> list[str]:
    """The datasets a flow reads that no earlier step of it writes, in order."""
    written: set[str] = set()
    found: list[str] = []
    for step in flow["steps"]:
        for task in step["tasks"]:
            for name in task.get("dataset_reads") or ():
                if name not in written and name not in found:
                    found.append(name)
        for task in step["tasks"]:
            written.update(task.get("dataset_writes") or ())
    return found


def _data(
    flow: Mapping[str, Any],
    top: float,
    step_w: int,
    gap: int,
    lead: int,
    pills: Mapping[str, tuple[float, float, float]],
    datasets: Mapping[str, str],
) -> tuple[list[str], list[str], float]:
    """The variables and datasets: each a node after the step that writes it (below its
    step's arrow; a source dataset before the first step), an edge from the task that
    writes it and one to each later task that reads it. Returns the edges' SVG, the
    nodes' and the height they take."""
    out: list[str] = []
    edges: list[str] = []
    nodes: dict[tuple[str, str], tuple[float, float, float]] = {}  # -> left, middle, width
    width = gap - 24
    vy = top + HEAD_H + 4
    for name in sources(flow):
        nodes[("dataset", name)] = (PAD, vy + VAR_H / 2, lead - 24)
        out.append(_node("dataset", name, PAD, vy, lead - 24, datasets.get(name)))
        vy += VAR_H + VAR_GAP
    height = vy - top
    for i, step in enumerate(flow["steps"]):
        x = PAD + lead + i * (step_w + gap) + step_w + 12
        vy = top + HEAD_H + 4
        for task in step["tasks"]:
            start = pills.get(task["key"])
            written = [("var", n) for n in task.get("writes") or ()]
            written += [("dataset", n) for n in task.get("dataset_writes") or ()]
            for kind, name in written:
                nodes[(kind, name)] = (x, vy + VAR_H / 2, width)
                out.append(_node(kind, name, x, vy, width, datasets.get(name)))
                if start is not None:
                    edges.append(_curve(start[1], start[2], x, vy + VAR_H / 2, kind))
                vy += VAR_H + VAR_GAP
        height = max(height, vy - top)
        for task in step["tasks"]:
            end = pills.get(task["key"])
            read = [("var", n) for n in task.get("reads") or ()]
            read += [("dataset", n) for n in task.get("dataset_reads") or ()]
            for kind, name in read:
                node = nodes.get((kind, name))
                if node is not None and end is not None and node[0] < end[0]:
                    edges.append(_curve(node[0] + node[2], node[1], end[0], end[2], kind))
    return edges, out, height


def _node(kind: str, name: str, x: float, y: float, width: float, what: str | None) -> str:
    """A variable (a pill) or a dataset (a square-cornered box) named ``name``."""
    label = _fit(name, int((width - 10) / _VAR_CHAR_W))
    title = f"{name}: dataset {what}" if kind == "dataset" and what else name
    rx = 3 if kind == "dataset" else 9
    return (
        f'<g class="{kind}-node" data-{kind}="{esc(name)}"><rect class="{kind}" x="{x}" '
        f'y="{y}" width="{width}" height="{VAR_H}" rx="{rx}"/><text class="var-name" '
        f'x="{x + 8}" y="{y + 13}">{esc(label)}</text><title>{esc(title)}</title></g>'
    )


def _curve(x1: float, y1: float, x2: float, y2: float, kind: str = "var") -> str:
    bend = max((x2 - x1) / 2, 20)
    css = "data-edge dataset-edge" if kind == "dataset" else "data-edge"
    return (
        f'<path class="{css}" d="M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} '
        f'{x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" marker-end="url(#arrow)"/>'
    )


def _step_height(step: Mapping[str, Any]) -> float:
    pills = len(step["tasks"]) + len(step.get("skipped") or ())
    return HEAD_H + pills * (PILL_H + PILL_GAP) + PILL_GAP


def _step(
    step: Mapping[str, Any],
    x: float,
    y: float,
    step_w: int,
    height: float,
    statuses: Mapping[str, str] | None,
    links: Mapping[str, str] | None,
    pills: dict[str, tuple[float, float, float]],
) -> list[str]:
    """The step's box and its tasks' pills; notes each pill's ``(left, right, middle)``
    in ``pills``."""
    n = len(step["tasks"])
    caption = f"{n} task{'s' * (n != 1)}" + (" in parallel" if n > 1 else "")
    room = (step_w - 28) / _NAME_W  # characters of the step's name that fit in its header
    if len(step["name"]) + len(caption) * _CAPTION_W / _NAME_W > room:
        caption = f"×{n}"
    name = _fit(step["name"], int(room - len(caption) * _CAPTION_W / _NAME_W))
    out = [
        f'<g class="step"><rect class="step-box" x="{x}" y="{y}" width="{step_w}" '
        f'height="{height}" rx="8"/>',
        f'<text class="step-name" x="{x + 10}" y="{y + 18}">{esc(name)}'
        f'<tspan class="step-caption" dx="8">{esc(caption)}</tspan></text>',
    ]
    py = y + HEAD_H
    for task in step["tasks"]:
        status = (statuses or {}).get(task["key"])
        css = f"task {status_class(status)}" if status else "task"
        pill = (
            f'<rect class="{css}" x="{x + 8}" y="{py}" width="{step_w - 16}" height="{PILL_H}" '
            f'rx="5"/><text class="task-name" x="{x + 16}" y="{py + 16}">'
            f"{esc(_fit(task['name'], int((step_w - 32) / _CHAR_W)))}</text>"
            f"<title>{esc(_task_title(task, status))}</title>"
        )
        target = (links or {}).get(task["key"])
        if target:
            pill = f'<a href="#{esc(target)}" data-target="{esc(target)}">{pill}</a>'
        out.append(f'<g class="task-node" data-task="{esc(task["key"])}">{pill}</g>')
        pills[task["key"]] = (x + 8, x + step_w - 8, py + PILL_H / 2)
        py += PILL_H + PILL_GAP
    for name in step.get("skipped") or ():
        out.append(
            f'<g class="task-node skipped"><rect class="task skipped" x="{x + 8}" y="{py}" '
            f'width="{step_w - 16}" height="{PILL_H}" rx="5"/><text class="task-name" '
            f'x="{x + 16}" y="{py + 16}">{esc(_fit(name, 18))} (avoid_tags)</text>'
            f"<title>{esc(name)}: left out by avoid_tags</title></g>"
        )
        py += PILL_H + PILL_GAP
    out.append("</g>")
    return out


def _task_title(task: Mapping[str, Any], status: str | None) -> str:
    lines = [task["key"], f"process {task['process']}"]
    if status:
        lines.append(status)
    if task.get("reads"):
        lines.append("in: " + ", ".join(task["reads"]))
    if task.get("writes"):
        lines.append("out: " + ", ".join(task["writes"]))
    if task.get("dataset_reads"):
        lines.append("reads datasets: " + ", ".join(task["dataset_reads"]))
    if task.get("dataset_writes"):
        lines.append("writes datasets: " + ", ".join(task["dataset_writes"]))
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
