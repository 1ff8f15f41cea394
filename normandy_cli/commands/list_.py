"""``normandy list``: every registered process, where it comes from and which flows use it.

Never imports a process module."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from normandy_cli._options import JsonOpt, ProjectOpt
from normandy_cli._output import reports_errors, table

if TYPE_CHECKING:
    from normandy_core.project import Project


@reports_errors
def list_processes(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List the registered processes: name, source package or module, target, flows using it."""
    from normandy_core.project import open_project

    proj = open_project(project)
    proj.raise_problems()
    usage = _flows_by_process(proj)
    rows = [
        {
            "name": spec.name,
            "source": spec.source,
            "kind": spec.kind,
            "target": spec.target,
            "flows": usage.get(spec.name, []),
        }
        for spec in proj.registry
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(
            "No process is registered. Install a package of processes or list modules "
            "in confs.plugins."
        )
        return
    typer.echo(
        table(
            ["PROCESS", "SOURCE", "TARGET", "FLOWS"],
            [(r["name"], r["source"], r["target"], ", ".join(r["flows"]) or "-") for r in rows],
        )
    )


def _flows_by_process(proj: Project) -> dict[str, list[str]]:
    usage: dict[str, list[str]] = {}
    for flow in proj.config.flows.values():
        for step in flow.steps:
            for entry in step.entries:
                names = usage.setdefault(entry.name, [])
                if flow.name not in names:
                    names.append(flow.name)
    return usage
