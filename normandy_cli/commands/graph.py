"""``normandy graph``: the flows as text, Mermaid, Graphviz dot, JSON or a self-contained
HTML page (SVG drawn here, nothing fetched): steps, tasks, the variables between them and
the datasets they read and write (a kind of node of their own, one per dataset: a flow's
writes reach another flow's reads through it)."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from normandy_cli._options import FlowsOpt, ProjectOpt, TagsOpt
from normandy_cli._output import reports_errors

if TYPE_CHECKING:
    from normandy_core.plan import Plan, Task


class GraphFormat(str, enum.Enum):  # noqa: UP042 - typer's choices, as they are
    text = "text"
    mermaid = "mermaid"
    dot = "dot"
    json = "json"
    html = "html"


Data = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
"""Task key -> (the variables it reads, those it outputs)."""


@dataclass(frozen=True)
class Datasets:
    """The datasets drawn: each one's ``type``, ``path`` and whether it is versioned, by
    name; and which each task reads and writes (``use``: task key -> (reads, writes))."""

    declared: dict[str, tuple[str, str | None, bool]] = field(default_factory=dict)
    use: Data = field(default_factory=dict)

    def describe(self, name: str) -> str:
        kind, path, versioned = self.declared.get(name, ("?", None, False))
        return f"{kind} {path or ''}".rstrip() + (" (versioned)" if versioned else "")

    def of(self, key: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self.use.get(key, ((), ()))


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
    checked = check_project(proj, flows, signatures=False, check_env=False, plan=plan)
    assert plan is not None  # else check_project raised the project's problems
    data = data_of(plan, lambda name: signature_or_none(proj.registry, name))
    drawn = Datasets()
    if checked.datasets is not None:
        specs = proj.config.dataset_specs()
        drawn = Datasets(
            {n: (s.type, s.path, s.versioned) for n, s in specs.items()},
            dict(checked.datasets.use),
        )
        data = {  # what is not a dataset is a variable
            key: (
                tuple(r for r in reads if r not in specs),
                tuple(w for w in writes if w not in specs),
            )
            for key, (reads, writes) in data.items()
        }
    render = {
        "text": to_text,
        "mermaid": to_mermaid,
        "dot": to_dot,
        "json": to_json,
        "html": to_html,
    }[fmt.value]
    typer.echo(render(plan, data, drawn))


def to_text(plan: Plan, data: Data, datasets: Datasets | None = None) -> str:
    datasets = datasets or Datasets()
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
                if task.map is not None:  # one node: its tasks are known at run time
                    shown += f"  [map over {task.map.variable}: {task.name}[*]]"
                lines.append(f"{bar} • {shown}")
                reads, writes = data.get(task.key, ((), ()))
                if reads:
                    lines.append(f"{bar}     in:  {', '.join(reads)}")
                if writes:
                    lines.append(f"{bar}     out: {', '.join(writes)}")
                read, written = datasets.of(task.key)
                if read:
                    lines.append(f"{bar}     reads:  {', '.join(read)}")
                if written:
                    lines.append(f"{bar}     writes: {', '.join(written)}")
        lines.append("")
    if datasets.declared:
        lines.append("datasets")
        width = max(map(len, datasets.declared))
        for name in datasets.declared:
            lines.append(f"  {name.ljust(width)}  {datasets.describe(name)}")
    return "\n".join(lines).rstrip()


def _label(task: Task) -> str:
    """A task's node: a mapped task is one node, ``name[*]``."""
    return f"{task.name}[*]" if task.map is not None else task.name


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


def _dataset_edges(plan: Plan, datasets: Datasets) -> list[tuple[str, str, str]]:
    """``(dataset, from, to)``: a task writing a dataset (``to`` is ``""``) or reading
    it (``from`` is ``""``), in plan order."""
    edges = []
    for task in plan.tasks():
        read, written = datasets.of(task.key)
        edges += [(name, "", task.key) for name in read]
        edges += [(name, task.key, "") for name in written]
    return edges


def _used(plan: Plan, datasets: Datasets) -> list[str]:
    """The datasets the plan reads or writes, in the order of their declaration."""
    found = {name for name, _, _ in _dataset_edges(plan, datasets)}
    return [name for name in datasets.declared if name in found]


def to_mermaid(plan: Plan, data: Data, datasets: Datasets | None = None) -> str:
    datasets = datasets or Datasets()
    lines = ["flowchart LR"]
    for flow in plan.flows:
        fid = _id("f", flow.name)
        lines.append(f'  subgraph {fid}["{flow.name}"]')
        lines.append("    direction LR")
        for step in flow.steps:
            sid = _id("s", flow.name, step.name)
            lines.append(f'    subgraph {sid}["{step.name}"]')
            for task in step.tasks:
                lines.append(f'      {_id("t", task.key)}["{_label(task)}"]')
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
    for name in _used(plan, datasets):  # a cylinder, with what it is
        lines.append(f'  {_id("d", name)}[("{name}<br/>{datasets.describe(name)}")]')
    for name, writer, reader in _dataset_edges(plan, datasets):
        if writer:
            lines.append(f"  {_id('t', writer)} --> {_id('d', name)}")
        else:
            lines.append(f"  {_id('d', name)} --> {_id('t', reader)}")
    if datasets.declared:
        lines.append("  classDef dataset fill:#e8f1fb,stroke:#3b7dd8")
        used = _used(plan, datasets)
        if used:
            lines.append(f"  class {','.join(_id('d', n) for n in used)} dataset")
    return "\n".join(lines)


def to_dot(plan: Plan, data: Data, datasets: Datasets | None = None) -> str:
    datasets = datasets or Datasets()
    lines = ["digraph normandy {", "  compound=true;", "  rankdir=LR;", "  node [shape=box];"]
    for flow in plan.flows:
        lines.append(f'  subgraph "cluster_{flow.name}" {{')
        lines.append(f'    label="{flow.name}";')
        for step in flow.steps:
            lines.append(f'    subgraph "cluster_{flow.name}.{step.name}" {{')
            lines.append(f'      label="{step.name}";')
            for task in step.tasks:
                lines.append(f'      "{task.key}" [label="{_label(task)}"];')
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
    for name in _used(plan, datasets):
        label = f"{name}\\n{datasets.describe(name)}".replace('"', '\\"')
        lines.append(f'  "dataset:{name}" [label="{label}", shape=cylinder];')
    for name, writer, reader in _dataset_edges(plan, datasets):
        if writer:
            lines.append(f'  "{writer}" -> "dataset:{name}";')
        else:
            lines.append(f'  "dataset:{name}" -> "{reader}";')
    lines.append("}")
    return "\n".join(lines)


def _flows_with_data(plan: Plan, data: Data, datasets: Datasets) -> list[dict[str, Any]]:
    flows: list[dict[str, Any]] = plan.to_dict()["flows"]
    for flow in flows:
        for step in flow["steps"]:
            for task in step["tasks"]:
                reads, writes = data.get(task["key"], ((), ()))
                task["reads"], task["writes"] = list(reads), list(writes)
                read, written = datasets.of(task["key"])
                task["dataset_reads"], task["dataset_writes"] = list(read), list(written)
    return flows


def to_json(plan: Plan, data: Data, datasets: Datasets | None = None) -> str:
    datasets = datasets or Datasets()
    declared = {
        name: {
            "type": kind,
            "path": path,
            "versioned": versioned,
            "writers": [w for n, w, _ in _dataset_edges(plan, datasets) if n == name and w],
            "readers": [r for n, _, r in _dataset_edges(plan, datasets) if n == name and r],
        }
        for name, (kind, path, versioned) in datasets.declared.items()
    }
    flows = _flows_with_data(plan, data, datasets)
    return json.dumps(
        {**plan.to_dict(), "flows": flows, "datasets": declared}, indent=2, default=str
    )


def to_html(plan: Plan, data: Data, datasets: Datasets | None = None) -> str:
    from normandy_core.report import render_flows_page

    datasets = datasets or Datasets()
    names = [flow.name for flow in plan.flows]
    title = ", ".join(names) if len(names) <= 4 else f"{len(names)} flows"
    described = {name: datasets.describe(name) for name in datasets.declared}
    return render_flows_page(
        _flows_with_data(plan, data, datasets), f"Flows: {title}", described
    )
