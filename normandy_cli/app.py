"""The ``normandy`` typer application and its entry point."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from normandy_cli import _legacy
from normandy_cli.commands.create_project import create_project
from normandy_cli.commands.graph import graph
from normandy_cli.commands.list_ import list_processes
from normandy_cli.commands.report import report
from normandy_cli.commands.run import run
from normandy_cli.commands.runs import runs
from normandy_cli.commands.validate import validate

app = typer.Typer(
    name="normandy",
    help="Run data pipelines of registered Python processes: flows of steps, the processes "
    "of a step in parallel.",
    no_args_is_help=True,
    add_completion=False,
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
app.command("create-project")(create_project)


def main(argv: list[str] | None = None) -> None:
    """The console script: translate the original command line, then run the app."""
    _declare_main_module()
    args = list(sys.argv[1:] if argv is None else argv)
    translated = _legacy.translate(args)
    if translated is not None:
        sys.stderr.write(_legacy.deprecation_note(translated) + "\n")
        args = translated
    app(args=args, prog_name="normandy")


def _declare_main_module() -> None:
    """Tell multiprocessing that the ``normandy`` script is ``python -m normandy_cli``.

    A new worker process re-runs a ``__main__`` known only by its file path, which for
    the console script means importing the whole CLI in every worker for nothing; a main
    module named ``*.__main__`` is skipped instead."""
    script = sys.modules.get("__main__")
    if script is not None and script.__spec__ is None and getattr(script, "main", None) is main:
        import importlib.util

        script.__spec__ = importlib.util.find_spec("normandy_cli.__main__")
