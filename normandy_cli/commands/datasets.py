"""``normandy datasets``: the project's datasets (``confs.datasets``) — type, path with the
env applied, size, and the run and task that last wrote each — as a table or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer

from normandy_cli._options import EnvOpt, JsonOpt, ProjectOpt
from normandy_cli._output import reports_errors, table, when


@reports_errors
def datasets(env: EnvOpt = None, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List the datasets of confs.datasets: type, path (with the env's overrides), size,
    and the run and task that last wrote each. Read one in Python with
    normandy_core.load(NAME)."""
    from normandy_core.datasets._catalog import describe_datasets, project_datasets
    from normandy_core.project import open_project
    from normandy_core.units import format_size

    proj = open_project(project)
    env_name, calls, paths = project_datasets(proj, env)
    found = describe_datasets(proj.root, calls, paths)
    if as_json:
        data = {"env": env_name, "datasets": [asdict(d) for d in found]}
        typer.echo(json.dumps(data, indent=2))
        return
    if not found:
        typer.echo("No dataset is declared: see confs.datasets in the configuration reference.")
        return
    rows = []
    for d in found:
        path = (d.path or d.location or "-") + ("/<run>/…" if d.versioned else "")
        if d.problem:
            size = "?"
        elif d.exists:
            size = format_size(d.size) if d.size is not None else "exists"
        else:
            size = "missing"
        by = f"{d.written_run} {d.written_task}" if d.written_run else "-"
        rows.append((d.name, d.type, path, d.version or "-", size, when(d.written_at), by))
    typer.echo(f"env {env_name}")
    headers = ["NAME", "TYPE", "PATH", "VERSION", "SIZE", "WRITTEN", "BY (RUN TASK)"]
    typer.echo(table(headers, rows))
    for d in found:
        if d.problem:
            typer.echo(f"{d.name}: cannot tell whether it exists: {d.problem}", err=True)
