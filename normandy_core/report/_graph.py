"""The flows of a plan as inline SVG: one row per flow, its steps left to right joined by
arrows, the tasks of a step stacked in its box (they run side by side). Used by the run
report (tasks colored by how they ended) and by ``normandy graph --format html``."""

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
_NAME_W, _CAPTION_W = 7.6, 5.8  # of a step's name (bold 12px), of its caption (10.5px)


def render_flows(
    flows: Sequence[Mapping[str, Any]],
    statuses: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
) -> str:
    """``flows`` as in ``Plan.to_dict()["flows"]``; ``statuses`` maps a task key to the
    category it is colored by, ``links`` to the id of the element a click on it shows."""
    if not flows:
        return '<p class="empty">No flow.</p>'
    names = [t["name"] for f in flows for s in f["steps"] for t in s["tasks"]]
    step_w = int(min(max(max(map(len, names), default=0) * _CHAR_W + 36, MIN_STEP_W), MAX_STEP_W))
    width = max(PAD * 2 + max(len(f["steps"]) for f in flows) * (step_w + GAP) - GAP, 320)
    parts: list[str] = []
    y: float = PAD
    for flow in flows:
        block, height = _flow(flow, y, step_w, statuses, links)
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
) -> tuple[list[str], float]:
    tags = ", ".join(flow.get("tags") or ()) or "no tags"
    out = [
        f'<g class="flow" data-flow="{esc(flow["name"])}">',
        f'<text class="flow-name" x="{PAD}" y="{y + 16}">{esc(flow["name"])}'
        f'<tspan class="flow-tags" dx="10">{esc(tags)}</tspan></text>',
    ]
    top = y + FLOW_HEAD
    heights = [_step_height(step) for step in flow["steps"]]
    if not flow["steps"]:
        out.append(f'<text class="muted" x="{PAD}" y="{top + 14}">no step to run</text>')
    for i, step in enumerate(flow["steps"]):
        x = PAD + i * (step_w + GAP)
        out.extend(_step(step, x, top, step_w, heights[i], statuses, links))
        if i:
            mid = top + HEAD_H / 2
            out.append(
                f'<line class="edge" x1="{x - GAP + 2}" y1="{mid}" x2="{x - 3}" y2="{mid}" '
                'marker-end="url(#arrow)"/>'
            )
    out.append("</g>")
    return out, FLOW_HEAD + max(heights, default=20)


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
) -> list[str]:
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
