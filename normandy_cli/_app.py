"""The ``normandy`` typer application: its commands and global options.

A command line that names a command is run by an application of that command alone
(:func:`app_for`): only its module is imported and only its options are made into
click's (the other commands' cost every command about 30 ms of its start). Anything
else — no command, ``--help``, a name misspelled, shell completion — gets every command
(:data:`app`), whose help and messages list them all.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import Annotated, Any

import typer

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run"),
    "validate": ("validate", "validate"),
    "list": ("list_", "list_processes"),
    "graph": ("graph", "graph"),
    "runs": ("runs", "runs"),
    "report": ("report", "report"),
    "vars": ("vars_", "variables"),
    "datasets": ("datasets", "datasets"),
    "gc": ("gc", "gc"),
    "ui": ("ui", "ui"),
    "create-project": ("create_project", "create_project"),
}
"""Each command's name -> its module in ``normandy_cli.commands`` and its function, in
the order ``normandy --help`` lists them."""


def _version(value: bool) -> None:
    if value:
        from normandy_core import __version__

        typer.echo(f"normandy {__version__}")
        raise typer.Exit()


def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Run data pipelines of registered Python processes."""


def build(names: Sequence[str] = tuple(COMMANDS)) -> typer.Typer:
    """The application with the commands ``names`` (all by default)."""
    made = typer.Typer(
        name="normandy",
        help="Run data pipelines of registered Python processes: flows of steps, the "
        "processes of a step in parallel.",
        no_args_is_help=True,
        add_completion=True,  # --install-completion, --show-completion (typer's)
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    made.callback()(_main)  # a group, with one command or all of them
    for name in names:
        module, function = COMMANDS[name]
        made.command(name)(
            getattr(importlib.import_module(f"normandy_cli.commands.{module}"), function)
        )
    return made


def app_for(args: Sequence[str]) -> typer.Typer:
    """The application to run ``args`` with: the command they name alone, else every
    command (see the module's docstring)."""
    completing = any(k.startswith("_NORMANDY") and k.endswith("_COMPLETE") for k in os.environ)
    if args and args[0] in COMMANDS and not completing:
        return build([args[0]])
    return build()


def __getattr__(name: str) -> Any:
    if name == "app":  # every command: for embedding, tests and the docs
        found = globals()["app"] = build()
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
