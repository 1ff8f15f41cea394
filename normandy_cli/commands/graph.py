"""``normandy graph``: the flows as text, Mermaid, Graphviz dot, JSON or a self-contained
HTML page (SVG drawn here, nothing fetched)."""

from __future__ import annotations

import enum
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from normandy_cli._options import FlowsOpt, ProjectOpt, TagsOpt
from normandy_cli._output import reports_errors

if TYPE_CHECKING:
    from normandy_core.plan import Plan


class GraphFormat(str, enum.Enum):  # noqa: UP042 - typer's choices, as they are
    text = "text"
    mermaid = "mermaid"
    dot = "dot"
    json = "json"
    html = "html"


Data = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
"""Task key -> (the variables it reads, those it outputs)."""


@reports_errors
def graph(
    tags: TagsOpt = None,
    flow: FlowsOpt = None,
    fmt: Annotated[GraphFormat, typer.Option("--format", help="Output format.")] = GraphFormat.text,
    project: ProjectOpt = None,
) -> None:
    """Draw the flows (all unless narrowed by --tags or --flow): steps in order, the tasks
    of a step side by side, and the variables between the tasks that write and read them."""
    from normandy_core.dataflow import data_of
    from normandy_core.errors import SelectionError
    from normandy_core.plan import Selection, build_plan, mask_names, select_flows
    from normandy_core.project import (
        check_project,
        credentials_mask,
        open_project,
        signature_or_none,
    )

    proj = open_project(project)
    names = tuple(tags or ()), tuple(flow or ())
    selection = Selection(*names) if any(names) else Selection(flows=tuple(proj.config.flows))
    # only the flows drawn are checked: a name that clashes stops only the flows using it
    flows, plan = None, None
    try:  # with the file's own problems too: the data flow's are reported with them
        flows = [f.name for f in select_flows(proj.config, selection)]
        # a task named by a credential value is drawn masked: of any env, as no env is chosen
        mask = credentials_mask(proj, list(proj.config.envs))
        plan = mask_names(build_plan(proj.config, selection), mask)
    except SelectionError:
        if not proj.problems:
            raise
    check_project(proj, flows, signatures=False, check_env=False, plan=plan)
    assert plan is not None  # else check_project raised the project's problems
    data = data_of(plan, lambda name: signature_or_none(proj.registry, name))
    render = {
        "text": to_text,
        "mermaid": to_mermaid,
        "dot": to_dot,
        "json": to_json,
        "html": to_html,
    }[fmt.value]
    typer.echo(render(plan, data))


def to_text(plan: Plan, data: Data) -> str:
    lines = []
    for flow in plan.flows:
        lines.append(f"{flow.name}  [{', '.join(flow.tags)}]")
        for i, step in enumerate(flow.steps):
            last = i == len(flow.steps) - 1
            bar = "   " if last else "│  "
            scope = step.tasks[0].scope if step.tasks else None
            made = f"  (template {scope.template})" if scope else ""
            lines.append(f"{'└─' if last else '├─'} {step.name}{made}")
            for task in step.tasks:
                shown = task.name if task.name == task.process else f"{task.name} ({task.process})"
                lines.append(f"{bar} • {shown}")
                reads, writes = data.get(task.key, ((), ()))
                if reads:
                    lines.append(f"{bar}     in:  {', '.join(reads)}")
                if writes:
                    lines.append(f"{bar}     out: {', '.join(writes)}")
        lines.append("")
    return "\n".join(lines).rstrip()


def _id(*parts: str) -> str:
    return "_".join("".join(c if c.isalnum() else "_" for c in p) for p in parts)


def _edges(plan: Plan, data: Data) -> list[tuple[str, str, str, str]]:
    """``(flow, variable, writer key, reader key)`` for each declared variable a later
    task reads (reader ``""``: nobody reads it)."""
    edges = []
    for flow in plan.flows:
        writer: dict[str, str] = {}
        for step in flow.steps:
            for task in step.tasks:
                for name in data.get(task.key, ((), ()))[0]:
                    if name in writer:
                        edges.append((flow.name, name, writer[name], task.key))
            for task in step.tasks:
                for name in data.get(task.key, ((), ()))[1]:
                    writer[name] = task.key
                    edges.append((flow.name, name, task.key, ""))
    return edges


def to_mermaid(plan: Plan, data: Data) -> str:
    lines = ["flowchart LR"]
    for flow in plan.flows:
        fid = _id("f", flow.name)
        lines.append(f'  subgraph {fid}["{flow.name}"]')
        lines.append("    direction LR")
        for step in flow.steps:
            sid = _id("s", flow.name, step.name)
            lines.append(f'    subgraph {sid}["{step.name}"]')
            for task in step.tasks:
                lines.append(f'      {_id("t", task.key)}["{task.name}"]')
            lines.append("    end")
        for a, b in zip(flow.steps, flow.steps[1:]):
            lines.append(f"    {_id('s', flow.name, a.name)} -.-> {_id('s', flow.name, b.name)}")
        lines.append("  end")
    for flow_name, name, writer, reader in _edges(plan, data):
        vid = _id("v", flow_name, name)
        if not reader:
            lines.append(f'  {vid}(["{name}"])')
            lines.append(f"  {_id('t', writer)} --> {vid}")
        else:
            lines.append(f"  {vid} --> {_id('t', reader)}")
    return "\n".join(lines)


def to_dot(plan: Plan, data: Data) -> str:
    lines = ["digraph normandy {", "  compound=true;", "  rankdir=LR;", "  node [shape=box];"]
    for flow in plan.flows:
        lines.append(f'  subgraph "cluster_{flow.name}" {{')
        lines.append(f'    label="{flow.name}";')
        for step in flow.steps:
            lines.append(f'    subgraph "cluster_{flow.name}.{step.name}" {{')
            lines.append(f'      label="{step.name}";')
            for task in step.tasks:
                lines.append(f'      "{task.key}" [label="{task.name}"];')
            lines.append("    }")
        lines.append("  }")
        for a, b in zip(flow.steps, flow.steps[1:]):
            lines.append(
                f'  "{a.tasks[0].key}" -> "{b.tasks[0].key}" '
                f'[ltail="cluster_{flow.name}.{a.name}", lhead="cluster_{flow.name}.{b.name}", '
                "style=dashed];"
            )
    for flow_name, name, writer, reader in _edges(plan, data):
        node = f"var:{flow_name}.{name}"
        if not reader:
            lines.append(f'  "{node}" [label="{name}", shape=note];')
            lines.append(f'  "{writer}" -> "{node}";')
        else:
            lines.append(f'  "{node}" -> "{reader}";')
    lines.append("}")
    return "\n".join(lines)


def _flows_with_data(plan: Plan, data: Data) -> list[dict[str, Any]]:
    flows: list[dict[str, Any]] = plan.to_dict()["flows"]
    for flow in flows:
        for step in flow["steps"]:
            for task in step["tasks"]:
                reads, writes = data.get(task["key"], ((), ()))
                task["reads"], task["writes"] = list(reads), list(writes)
    return flows


def to_json(plan: Plan, data: Data) -> str:
    return json.dumps(
        {**plan.to_dict(), "flows": _flows_with_data(plan, data)}, indent=2, default=str
    )


def to_html(plan: Plan, data: Data) -> str:
    from normandy_core.report import render_flows_page

    names = [flow.name for flow in plan.flows]
    title = ", ".join(names) if len(names) <= 4 else f"{len(names)} flows"
    return render_flows_page(_flows_with_data(plan, data), f"Flows: {title}")
