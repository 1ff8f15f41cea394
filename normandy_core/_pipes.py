"""A reader that goes away is not an error: ``normandy runs | head -1`` ends quietly.

Python ignores SIGPIPE, so a write to a pipe whose reader closed it raises
``BrokenPipeError`` — in the middle of a table, in a run's summary, or when Python flushes
``sys.stdout`` at exit. The streams made here write to a descriptor that, once its reader
is gone, sends what comes next to ``/dev/null``: the command finishes what it does (a run
is recorded, its variables kept) and exits with its own status, as if the reader had read
everything. :func:`quiet_on_closed_pipes` puts ``sys.stdout`` and ``sys.stderr`` on such
descriptors (the ``normandy`` command does it first thing); :func:`quiet_text` makes one
(the console of a run, on a duplicate of descriptor 2). Only the standard library is used:
``normandy --version`` goes through here too.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any, TextIO

__all__ = ["quiet_on_closed_pipes", "quiet_text"]


class _QuietFile(io.FileIO):
    """A descriptor that stops writing, without an error, once its reader is gone."""

    def write(self, data: Any) -> int:
        try:
            return super().write(data)
        except BrokenPipeError:
            _to_devnull(self.fileno())
            return memoryview(data).nbytes


class _QuietBuffer(io.BufferedWriter):
    """The buffer of a quiet text stream (its class tells a stream made quiet already)."""


def _to_devnull(fd: int) -> None:
    """Point ``fd`` at ``/dev/null``: what is written to it from now on (by this process,
    a C library, a child started later) is dropped."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


def quiet_text(
    fd: int,
    *,
    encoding: str | None = None,
    errors: str | None = None,
    line_buffering: bool = False,
    write_through: bool = False,
    buffered: bool = True,
    closefd: bool = False,
) -> TextIO:
    """A text stream on ``fd`` that goes quiet when its reader is gone (line-buffered on a
    terminal whatever ``line_buffering`` says, as Python's own standard streams are;
    without ``buffered``, each write goes to ``fd`` at once, as under ``python -u``)."""
    raw = _QuietFile(fd, "w", closefd=closefd)
    return io.TextIOWrapper(
        _QuietBuffer(raw) if buffered else raw,
        encoding=encoding or "utf-8",
        errors=errors or "backslashreplace",
        line_buffering=line_buffering or raw.isatty(),
        write_through=write_through or not buffered,
    )


_replaced: list[TextIO] = []
"""The streams replaced, kept: collected, they would close descriptors 1 and 2."""


def quiet_on_closed_pipes() -> None:
    """Make ``sys.stdout`` and ``sys.stderr`` quiet when their reader goes away (see the
    module's docstring). Only a process's own standard streams are changed, once."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or stream is not getattr(sys, f"__{name}__"):
            continue  # embedded in a program (a test's capture) that chose its own
        buffer = getattr(stream, "buffer", None)
        if isinstance(buffer, (_QuietBuffer, _QuietFile)):
            continue
        try:
            fd = stream.fileno()
            stream.flush()
        except (AttributeError, OSError, ValueError):
            continue
        quiet = quiet_text(
            fd,
            encoding=stream.encoding,
            errors=stream.errors,
            line_buffering=bool(getattr(stream, "line_buffering", False)),
            write_through=bool(getattr(stream, "write_through", False)),
            # PYTHONUNBUFFERED: no buffer between the text and the descriptor
            buffered=isinstance(buffer, io.BufferedIOBase),
        )
        _replaced.append(stream)
        setattr(sys, name, quiet)
        setattr(sys, f"__{name}__", quiet)
