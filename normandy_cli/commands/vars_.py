"""``normandy vars [RUN_ID|last]``: a run's variables — flow, name, type, size, the task
that wrote it — as a table or JSON (``normandy_core.load`` reads one)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from normandy_cli._options import FlowsOpt, JsonOpt, ProjectOpt
from normandy_cli._output import reports_errors, table

if TYPE_CHECKING:
    from normandy_core.catalog import StoredVariable


@reports_errors
def variables(
    run_id: Annotated[
        str, typer.Argument(metavar="[RUN_ID|last]", help="The run (default: the last).")
    ] = "last",
    flow: FlowsOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the variables of a run: flow, name, type, size and the task that wrote each.
    Read one in Python with normandy_core.load(NAME, run=RUN_ID)."""
    from normandy_core.catalog import run_variables
    from normandy_core.units import format_size

    found = run_variables(run_id, project)
    if flow:
        found = [v for v in found if v.flow in flow]
    if as_json:
        typer.echo(json.dumps([asdict(v) for v in found], indent=2))
        return
    if not found:
        which = f" in flow {', '.join(flow)}" if flow else ""
        typer.echo(f"No variable is stored for this run{which}.")
        return
    typer.echo(f"run {found[0].run}")
    rows = [(v.flow, v.name, v.type or "-", format_size(v.size), _writer(v)) for v in found]
    typer.echo(table(["FLOW", "NAME", "TYPE", "SIZE", "WRITTEN BY"], rows))


def _writer(variable: StoredVariable) -> str:
    """The task that wrote it; ``… (cached from RUN)`` where its task reused a success."""
    if variable.task is None:
        return "-"
    if variable.cached_from:
        return f"{variable.task} (cached from {variable.cached_from})"
    return variable.task
