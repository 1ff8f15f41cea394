"""The ``normandy`` typer application: its commands and global options."""

from __future__ import annotations

from typing import Annotated

import typer

from normandy_cli.commands.create_project import create_project
from normandy_cli.commands.gc import gc
from normandy_cli.commands.graph import graph
from normandy_cli.commands.list_ import list_processes
from normandy_cli.commands.report import report
from normandy_cli.commands.run import run
from normandy_cli.commands.runs import runs
from normandy_cli.commands.ui import ui
from normandy_cli.commands.validate import validate
from normandy_cli.commands.vars_ import variables

app = typer.Typer(
    name="normandy",
    help="Run data pipelines of registered Python processes: flows of steps, the processes "
    "of a step in parallel.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion (typer's)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from normandy_core import __version__

        typer.echo(f"normandy {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Run data pipelines of registered Python processes."""


app.command("run")(run)
app.command("validate")(validate)
app.command("list")(list_processes)
app.command("graph")(graph)
app.command("runs")(runs)
app.command("report")(report)
app.command("vars")(variables)
app.command("gc")(gc)
app.command("ui")(ui)
app.command("create-project")(create_project)
