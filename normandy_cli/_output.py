"""Turning Normandy's errors into messages and exit statuses (SPEC 7: 2 for usage or
configuration errors). Only the CLI does this; the core raises."""

from __future__ import annotations

import errno
import functools
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
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


def json_text(value: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as JSON for a reader and a tool alike: the members of an object and the
    items of a list one per line, two levels deep; below that, each member or item whole
    on its line. A run of 2,000 tasks is a line per task (and written by the C encoder:
    indenting every level is Python's encoder, four times slower)."""
    import json

    def dump(item: Any) -> str:
        return json.dumps(item, default=default)

    def block(item: Any, depth: int) -> str:
        if depth > 1 or not item:
            return dump(item)
        pad = "  " * (depth + 1)
        if isinstance(item, dict) and all(isinstance(k, str) for k in item):
            lines = [f"{pad}{dump(k)}: {block(v, depth + 1)}" for k, v in item.items()]
            return "{\n" + ",\n".join(lines) + "\n" + "  " * depth + "}"
        if isinstance(item, list | tuple):
            lines = [pad + block(v, depth + 1) for v in item]
            return "[\n" + ",\n".join(lines) + "\n" + "  " * depth + "]"
        return dump(item)

    return block(value, 0)


_MACHINE_ERRNOS = frozenset(
    {
        errno.ENOSPC,  # a full disk
        errno.EDQUOT,
        errno.EACCES,  # a folder it may not write
        errno.EPERM,
        errno.EROFS,
        errno.ENOENT,  # a folder removed under it
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.ENAMETOOLONG,
        errno.EMFILE,
        errno.ENFILE,
        errno.EIO,
    }
)
"""The ``OSError``s that say something of the user's machine or folders, not of
Normandy's code: they become a message; any other error is a bug, shown as one."""

BUG_REPORT = (
    "normandy: internal error: this is a bug in Normandy, not in your project. Please report "
    "it with the traceback above and the command you ran (normandy --version: {version})."
)


def reports_errors(command: F) -> F:
    """Decorate a command so that a :class:`NormandyError`, or an ``OSError`` of the
    machine (a full disk, a folder it cannot write), is printed, not raised, and the
    command exits with status 2 (130 for a Ctrl-C that no run handled). Any other error is
    a bug of Normandy's: its traceback is printed with a request to report it (exit 1)."""

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
        except OSError as exc:
            if exc.errno not in _MACHINE_ERRNOS:
                _bug()
            where = f" ({exc.filename})" if exc.filename else ""
            err(
                f"normandy: error: {exc.strerror or exc}{where}; check that the project's "
                "folders can be written and the disk has room"
            )
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt:  # before a run started (a run records its own)
            err("normandy: interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (typer.Exit, typer.Abort):  # how commands end (a RuntimeError, for click)
            raise
        except Exception as exc:
            if _is_usage_error(exc):  # typer.BadParameter and the like: click shows them
                raise
            _bug()

    return wrapper  # type: ignore[return-value]


def _is_usage_error(exc: BaseException) -> bool:
    """A click usage error (typer ships its own copy of click: matched by name)."""
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__)


def _bug() -> None:
    """Print the exception being handled as a bug of Normandy's, and exit 1."""
    from normandy_core import __version__

    traceback.print_exc()
    err(BUG_REPORT.format(version=__version__))
    raise typer.Exit(EXIT_FAILED) from None


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


SHOWN_IMPORT = 0.005
"""Seconds of import under which a task's IMPORT column is not shown (``0.00s``)."""


def imports_shown(durations: Iterable[float]) -> bool:
    """Whether a table of tasks gets an IMPORT column: some task's worker spent time
    importing its process's module (apart from its DURATION)."""
    return any(d >= SHOWN_IMPORT for d in durations)


def when(ts: float | None) -> str:
    """A time as the tables show it: ``2026-11-25 13:40:30``, ``-`` for none."""
    from datetime import datetime

    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def plural(n: int, word: str) -> str:
    """``1 task``, ``2 tasks``."""
    return f"{n} {word}{'s' * (n != 1)}"
