"""``normandy gc``: delete the stored variables and logs of older runs (SPEC 13)."""

from __future__ import annotations

from typing import Annotated

import typer

from normandy_cli._options import ProjectOpt
from normandy_cli._output import err, plural, reports_errors


@reports_errors
def gc(
    keep: Annotated[
        int, typer.Option("--keep", min=0, help="How many of the latest runs to keep.")
    ] = 20,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            metavar="DAYS",
            min=0,
            help="Prune only runs older than this many days.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be pruned; delete nothing.")
    ] = False,
    project: ProjectOpt = None,
) -> None:
    """Delete the stored variables and log folders of older runs, keeping the latest
    (--keep) and every run whose variables a kept run reuses. Their rows stay in the
    history, marked pruned."""
    from normandy_core.config import read_config
    from normandy_core.retention import collect
    from normandy_core.roots import find_project_root

    root = find_project_root(project)
    config, _problems = read_config(root)
    store = config.store if config is not None else None
    collected = collect(root, store, keep=keep, older_than=older_than, dry_run=dry_run)
    for run_id in collected.runs:
        typer.echo(run_id)
    err(f"normandy gc: {collected.describe()}; {plural(collected.kept, 'run')} kept")
