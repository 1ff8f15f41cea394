"""``normandy report [RUN_ID|last]``: one self-contained HTML file showing a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from normandy_cli._options import ProjectOpt
from normandy_cli._output import err, reports_errors


@reports_errors
def report(
    run_id: Annotated[
        str, typer.Argument(metavar="[RUN_ID|last]", help="The run to show (default: the last).")
    ] = "last",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            dir_okay=False,
            help="Where to write the HTML (default: logs/<run_id>/report.html).",
            show_default=False,
        ),
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Write an HTML report of a run: its timeline by worker, its flows, every task's
    params, attempts, error and log tail. Prints where it wrote it."""
    from normandy_core.errors import display_path
    from normandy_core.report import write_report
    from normandy_core.roots import find_project_root

    root = find_project_root(project)
    path, view = write_report(root, run_id, output)
    tasks = sum(1 for t in view.tasks if t.record.status != "mapped")  # a map: its elements
    err(f"report of run {view.run.id} ({view.run.status}, {tasks} tasks):")
    typer.echo(display_path(path))
