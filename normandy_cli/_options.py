"""Options shared by several commands, as reusable ``Annotated`` aliases, and the shell
completion of their values."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from normandy_core.completion import ProjectNames


def _project_names(ctx: typer.Context, *, installed: bool = False) -> ProjectNames:
    """The names of the project of the command being completed: its ``--project`` if
    already given, else the current folder's."""
    from normandy_core.completion import project_names

    start = ctx.params.get("project")
    return project_names(Path(start) if start else None, installed=installed)


def complete_tags(ctx: typer.Context, incomplete: str) -> list[str]:
    """The tags of the project's flows that start with ``incomplete``."""
    return [t for t in _project_names(ctx).tags if t.startswith(incomplete)]


def complete_flows(ctx: typer.Context, incomplete: str) -> list[str]:
    """The project's flow names that start with ``incomplete``."""
    return [f for f in _project_names(ctx).flows if f.startswith(incomplete)]


def complete_envs(ctx: typer.Context, incomplete: str) -> list[str]:
    """The project's envs that start with ``incomplete``."""
    return [e for e in _project_names(ctx).envs if e.startswith(incomplete)]


def complete_processes(ctx: typer.Context, incomplete: str) -> list[str]:
    """The process names (the project's and the installed ones) that start with
    ``incomplete``; no process or plugin module is imported."""
    names = _project_names(ctx, installed=True).processes
    return [p for p in names if p.startswith(incomplete)]


ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project",
        help="Project folder (default: the nearest folder, upward, holding "
        "pipeline/pipeline_conf.yml).",
        file_okay=False,
        show_default=False,
    ),
]
TagsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--tags",
        "-t",
        help="Select the flows having any of these tags (repeatable).",
        show_default=False,
        autocompletion=complete_tags,
    ),
]
FlowsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--flow",
        "-f",
        help="Select flows by name (repeatable); --tags then only count for avoid_tags.",
        show_default=False,
        autocompletion=complete_flows,
    ),
]
EnvOpt = Annotated[
    str | None,
    typer.Option(
        "--env",
        "-e",
        help="Environment from confs.envs (default: confs.default_env, else dev, else the first).",
        show_default=False,
        autocompletion=complete_envs,
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="KEY=VALUE",
        help="Override a param for every process (repeatable); VALUE is read as YAML "
        "(100 is an int, true a bool).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["limit=100", "name=x"]`` -> ``{"limit": 100, "name": "x"}`` (values read as YAML)."""
    params: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--param")
        params[key.strip()] = parse_scalar(text, key.strip())
    return params


def parse_scalar(text: str, key: str = "") -> Any:
    """A command-line value read as YAML; text that is not valid YAML stays text.

    YAML the configuration would refuse (an alias cycle, aliases expanding past the bound,
    a tag, a duplicate key) is a usage error naming ``--param KEY``.
    """
    from normandy_core.config import parse_yaml

    doc, problems = parse_yaml(text, "--param")
    if doc is None:
        return text
    if problems:
        hint = f"--param {key}" if key else "--param"
        reasons = "; ".join(f"{p.message} (column {p.column})" for p in problems)
        raise typer.BadParameter(reasons, param_hint=hint)
    value = doc.data
    return (
        text if value is None and text.strip() not in ("", "~", "null", "Null", "NULL") else value
    )
