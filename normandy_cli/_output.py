"""Turning Normandy's errors into messages and exit statuses (SPEC 7: 2 for usage or
configuration errors). Only the CLI does this; the core raises."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import typer

from normandy_core.errors import ConfigError, NormandyError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])


def err(text: str) -> None:
    """Write a line to stderr."""
    sys.stderr.write(text + "\n")


def reports_errors(command: F) -> F:
    """Decorate a command so that a :class:`NormandyError`, or an ``OSError`` of the
    machine (a folder it cannot write), is printed, not raised, and the command exits
    with status 2 (130 for a Ctrl-C that no run handled)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConfigError as exc:
            for problem in exc.problems:
                err(str(problem))
            count = len(exc.problems)
            err(
                f"normandy: {count} problem{'s' if count != 1 else ''} in the configuration; "
                "nothing was run."
            )
            raise typer.Exit(EXIT_USAGE) from None
        except NormandyError as exc:
            err(f"normandy: error: {exc}")
            raise typer.Exit(EXIT_USAGE) from None
        except OSError as exc:  # a folder it cannot write, a disk full: not a bug to trace
            where = f" ({exc.filename})" if exc.filename else ""
            err(
                f"normandy: error: {exc.strerror or exc}{where}; check that the project's "
                "folders can be written and the disk has room"
            )
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt:  # before a run started (a run records its own)
            err("normandy: interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, columns left-aligned and padded."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def secs(value: float | None) -> str:
    """A duration as the tables show it: ``1.23s``, ``-`` for none."""
    return "-" if value is None else f"{value:.2f}s"


def when(ts: float | None) -> str:
    """A time as the tables show it: ``2026-11-25 13:40:30``, ``-`` for none."""
    from datetime import datetime

    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def plural(n: int, word: str) -> str:
    """``1 task``, ``2 tasks``."""
    return f"{n} {word}{'s' * (n != 1)}"
