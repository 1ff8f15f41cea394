"""MkDocs hook: the command line reference, written from the typer application itself.

A page holding the marker ``<!-- normandy: cli reference -->`` gets, in its place, every
command of ``normandy`` with its usage, its help and a table of its arguments and
options, as ``normandy COMMAND --help`` prints them: the reference cannot drift from the
code. :func:`reference` is what tests/docs/test_docs.py checks.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- normandy: cli reference -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, reference())
    return markdown


def reference() -> str:
    """Every command of the ``normandy`` application, as Markdown."""
    import typer.main

    from normandy_cli.app import app

    # typer's own click (typer vendors one): contexts made by the commands themselves
    root = typer.main.get_command(app)
    root_ctx = root.make_context("normandy", [], resilient_parsing=True)
    parts = [_command("normandy", root, root_ctx, level=2, options_only=True)]
    for name in root.list_commands(root_ctx):  # type: ignore[attr-defined]
        command = root.get_command(root_ctx, name)  # type: ignore[attr-defined]
        if command is None or command.hidden:
            continue
        ctx = command.make_context(name, [], parent=root_ctx, resilient_parsing=True)
        parts.append(_command(f"normandy {name}", command, ctx, level=2))
    return "\n\n".join(parts)


def _command(title: str, command: Any, ctx: Any, *, level: int, options_only: bool = False) -> str:
    import inspect

    lines = [f"{'#' * level} `{title}`", ""]
    if not options_only:
        usage = " ".join(command.collect_usage_pieces(ctx))
        lines += ["```", f"{title} {usage}", "```", ""]
    help_text = inspect.cleandoc(command.help or "")
    if help_text:
        lines += [_escape(help_text), ""]
    rows = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if param.param_type_name == "argument":
            name = param.human_readable_name
            rows.append((name, getattr(param, "help", None) or "", "argument"))
        elif record is not None:
            rows.append((record[0], record[1], "option"))
    if rows:
        lines += ["| argument or option | meaning |", "| --- | --- |"]
        for name, text, _ in rows:
            lines.append(f"| `{_cell(name)}` | {_cell(_escape(text))} |")
    return "\n".join(lines)


def _escape(text: str) -> str:
    """Help text as Markdown text: ``<`` and ``>`` are not tags, ``*`` not emphasis."""
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("*", r"\*")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", r"\|")
