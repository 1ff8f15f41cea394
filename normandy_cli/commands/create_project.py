"""``normandy create-project PATH``: a project that runs at once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from normandy_cli._output import err, reports_errors


@reports_errors
def create_project(
    path: Annotated[
        Path, typer.Argument(help="Folder of the new project (created if needed).", file_okay=False)
    ],
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Create a project: a pipeline that runs at once, and a package of its processes."""
    from normandy_core.errors import display_path
    from normandy_core.scaffold import create_project as scaffold

    written = scaffold(path, force=force)
    where = display_path(path)
    err(f"created {where} ({len(written)} files). Next:")
    err(f"  cd {where} && normandy run      # runs the pipeline, env dev")
    err("  normandy graph                    # what runs, in which order")
    err("  pip install -e '.[test]' && python -m pytest   # the processes' tests")
