"""``normandy list``: every registered process, where it comes from and which flows use it.

Never imports a process module. A name registered to several targets (a clash) is listed
once per target, with a warning on stderr: it is an error only for the flows using it."""

from __future__ import annotations

import fnmatch
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from normandy_cli._options import JsonOpt, ProjectOpt, complete_processes
from normandy_cli._output import err, reports_errors, table

if TYPE_CHECKING:
    from normandy_core.project import Project


@reports_errors
def list_processes(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[NAME]...",
            help="Only these processes (shell wildcards allowed: 'acme.*').",
            autocompletion=complete_processes,
            show_default=False,
        ),
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the registered processes: name, source package or module, target, flows using
    it. A name registered to several targets is listed once per target, with a warning."""
    from normandy_core.project import open_project

    proj = open_project(project)
    proj.raise_problems()
    rows = [row for row in _rows(proj) if _wanted(row["name"], names)]
    usage = _flows_by_process(proj)
    for name in proj.registry.clashes():
        if not _wanted(name, names):
            continue
        used = usage.get(name)
        where = f"used by {', '.join(used)}" if used else "no flow of this project uses it"
        err(f"normandy: warning: {proj.registry.clash(name)} ({where})")
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(
            "No process matches." if names else "No process is registered. Install a package "
            "of processes, or register the project's own in confs.processes."
        )
        return
    headers = ["PROCESS", "SOURCE", "TARGET", "FLOWS"]
    notes = any(_note(r) for r in rows)
    typer.echo(
        table(
            [*headers, "NOTE"] if notes else headers,
            [
                (r["name"], r["source"], r["target"], ", ".join(r["flows"]) or "-")
                + ((_note(r),) if notes else ())
                for r in rows
            ],
        )
    )


def _rows(proj: Project) -> list[dict[str, Any]]:
    """One row per registration in effect: several for a name that clashes."""
    usage = _flows_by_process(proj)
    clashes = proj.registry.clashes()
    rows = []
    for spec in proj.registry:
        row: dict[str, Any] = {
            "name": spec.name,
            "source": spec.source,
            "kind": spec.kind,
            "target": spec.target,
            "flows": usage.get(spec.name, []),
            "clash": spec.name in clashes,
        }
        overridden = proj.registry.overridden(spec.name)
        if overridden:
            row["overrides"] = [s.describe() for s in overridden]
        rows.append(row)
    return rows


def _note(row: dict[str, Any]) -> str:
    if row["clash"]:
        return "clash: choose one in confs.processes"
    if row.get("overrides"):
        return "overrides " + ", ".join(row["overrides"])
    return ""


def _wanted(name: str, patterns: list[str] | None) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _flows_by_process(proj: Project) -> dict[str, list[str]]:
    usage: dict[str, list[str]] = {}
    for flow in proj.config.flows.values():
        for step in flow.steps:
            for entry in step.entries:
                names = usage.setdefault(entry.process, [])
                if flow.name not in names:
                    names.append(flow.name)
    return usage
