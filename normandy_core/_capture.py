"""What a task writes to its file descriptors 1 and 2 — its subprocesses' output,
``os.write(1, …)``, a C library's ``printf`` — as log records of the task (SPEC 4, 11).

``print`` is caught above this, in Python (``sys.stdout`` is a
:class:`~normandy_core.tasklog.LogWriter` while a task runs). Below it, each of the two
descriptors is a pipe, read by a thread that writes what comes to the current task's
``LogWriter`` (stdout as INFO, stderr as WARNING): masked and tagged like the rest of the
task's log, and never on Normandy's own stdout, so ``run --json`` stays clean.

In a worker the descriptors are redirected once, for good (``permanent``);
what is written between two tasks (a thread a task left behind) is filed under the
worker. Under ``serial`` the task runs in ``normandy`` itself: the descriptors are
redirected for the time of each task only, and Normandy's console writes to a duplicate
of the original descriptor 2 (:func:`console_stream`), which no task's capture touches.

Reading and draining take one lock, so when :meth:`Capture.end` returns, every byte the
task wrote is in its records: nothing is in flight in the reading thread.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import select
import sys
import threading
from typing import Any, TextIO

from normandy_core._pipes import quiet_text
from normandy_core.tasklog import LogWriter

__all__ = ["Capture", "console_stream"]

_CHUNK = 1 << 16


class _Stream:
    """One captured descriptor: its pipe, and whose records what is read from it becomes."""

    def __init__(self, fd: int, level: int, logger: logging.Logger) -> None:
        self.fd = fd
        self.level = level
        self.read_end, self.write_end = os.pipe()
        self.logger = logger
        self.writer: LogWriter | None = None
        """``logger``'s, made when the first byte comes (most tasks write none)."""
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.lock = threading.Lock()
        self.ready = select.poll()
        self.ready.register(self.read_end, select.POLLIN)
        self.saved: int | None = None
        self.ended = False
        self.read_since_switch = False

    def pump(self, stop: int) -> None:
        """The reading thread: wait for data, then read it under the lock."""
        waiting = select.poll()
        waiting.register(self.read_end, select.POLLIN)
        waiting.register(stop, select.POLLIN)
        while not self.ended:
            events = waiting.poll()
            if any(fd == stop for fd, _ in events):
                return
            with self.lock:
                self._drain()

    def _drain(self) -> None:
        """Read what the pipe holds, without blocking (the lock is held)."""
        while not self.ended and self.ready.poll(0):
            try:
                data = os.read(self.read_end, _CHUNK)
            except OSError:
                data = b""
            if not data:  # every writing end is closed
                self.ended = True
                return
            self.read_since_switch = True
            self._write(self.decoder.decode(data))

    def _write(self, text: str) -> None:
        if text:
            if self.writer is None:
                self.writer = LogWriter(self.logger, self.level, shared=True)
            with contextlib.suppress(Exception):  # a record that cannot be sent is lost alone
                self.writer.write(text)

    def switch(self, logger: logging.Logger) -> None:
        """Everything written so far goes to the current logger, flushed (its last line
        without a newline included); what comes next goes to ``logger``."""
        with self.lock:
            self._drain()
            if self.read_since_switch:
                self._write(self.decoder.decode(b"", final=True))
                self.decoder.reset()
                if self.writer is not None:
                    with contextlib.suppress(Exception):
                        self.writer.end()
                self.writer = None
                self.read_since_switch = False
            self.logger = logger

    def redirect(self) -> None:
        self.saved = os.dup(self.fd)
        os.dup2(self.write_end, self.fd)

    def restore(self) -> None:
        if self.saved is not None:
            os.dup2(self.saved, self.fd)
            os.close(self.saved)
            self.saved = None

    def close(self) -> None:
        self.restore()
        for fd in (self.read_end, self.write_end):
            with contextlib.suppress(OSError):
                os.close(fd)


class Capture:
    """Descriptors 1 and 2 of this process, as records of the task between :meth:`begin`
    and :meth:`end`; as records of ``fallback`` outside tasks. ``permanent`` (a worker):
    the descriptors go to the pipes from now on; else only between :meth:`begin` and
    :meth:`end`."""

    def __init__(self, fallback: logging.Logger, *, permanent: bool) -> None:
        self.fallback = fallback
        self.is_permanent = permanent
        self.streams = [_Stream(1, logging.INFO, fallback), _Stream(2, logging.WARNING, fallback)]
        self.stop_read, self.stop_write = os.pipe()
        _flush_all()
        if permanent:
            for stream in self.streams:
                os.dup2(stream.write_end, stream.fd)
                os.close(stream.write_end)
                stream.write_end = stream.fd
        self.threads = [
            threading.Thread(
                target=stream.pump,
                args=(self.stop_read,),
                name=f"normandy-fd{stream.fd}",
                daemon=True,
            )
            for stream in self.streams
        ]
        for thread in self.threads:
            thread.start()

    def begin(self, logger: logging.Logger) -> None:
        """What is written from now on is ``logger``'s (a task's)."""
        _flush_all()
        for stream in self.streams:
            stream.switch(logger)
            if not self.is_permanent:
                stream.redirect()

    def end(self) -> None:
        """Put everything the task wrote in its records, complete lines and the last one
        without a newline; back to the fallback (and, under ``serial``, to the original
        descriptors)."""
        _flush_all()
        for stream in self.streams:
            stream.restore()
        for stream in self.streams:
            stream.switch(self.fallback)

    def close(self) -> None:
        """Stop reading; the original descriptors are back (unless ``permanent``)."""
        _flush_all()
        for stream in self.streams:
            stream.restore()
            stream.switch(self.fallback)
        os.write(self.stop_write, b"x")
        for thread in self.threads:
            thread.join(timeout=5)
        for stream in self.streams:
            if not self.is_permanent:
                stream.close()
        for fd in (self.stop_read, self.stop_write):
            os.close(fd)


def _flush_all() -> None:
    """What Python and the C library hold in their buffers, written now (to wherever
    descriptors 1 and 2 point at this moment)."""
    streams = {id(s): s for s in (sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr)}
    for stream in streams.values():
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.flush()
    _libc_flush()


_fflush: Any = None


def _libc_flush() -> None:
    """``fflush(NULL)``: what a C extension printed and its C library still buffers."""
    global _fflush
    if _fflush is None:
        try:
            import ctypes

            _fflush = ctypes.CDLL(None).fflush
        except (OSError, AttributeError):  # not on this system
            _fflush = False
    if _fflush:
        _fflush(None)


_console: TextIO | None = None


def console_stream() -> TextIO:
    """A text stream on a duplicate of descriptor 2, made once per process: where the
    console goes while a task runs in this process (``serial``) with its descriptor 2
    captured. ``sys.stderr`` where descriptor 2 cannot be duplicated."""
    global _console
    if _console is None:
        err = sys.__stderr__ or sys.stderr
        try:
            fd = os.dup(2)
        except OSError:
            return sys.stderr
        # a reader that goes away (`normandy run 2>&1 | head`) does not stop the run
        _console = quiet_text(
            fd,
            encoding=getattr(err, "encoding", None),
            errors=getattr(err, "errors", None),
            line_buffering=True,
            closefd=True,
        )
    return _console
