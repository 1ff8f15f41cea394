"""Ctrl-C and SIGTERM during a run: the first stops it (as
:class:`~normandy_core._interrupt.RunInterrupted`, a ``KeyboardInterrupt``), a second one
while it is being stopped is ignored, so the record is written whole. A process's own
``KeyboardInterrupt`` is not one of these: it fails its task.

Python runs a signal's handler between two bytecodes of the main thread, wherever it is:
inside a garbage collector's callback (Dask installs one), a ``__del__`` or a library's
``except BaseException``, the exception it raises is lost. So the handler first tells the
run (``on_signal``: the scheduler's inbox), which raises it again where it next waits; and
Python's report of the lost exception ("Exception ignored in…", a traceback on stderr) is
left out, since the run is stopped all the same."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from normandy_core._interrupt import RunInterrupted


class Interrupts:
    """SIGINT and SIGTERM as :class:`RunInterrupted`, once: a second signal while the run
    is being stopped is ignored. With ``ignore``, both are ignored inside the block.
    ``on_signal`` is called (in the handler: it must be reentrant) before the exception is
    raised, so that a lost exception still stops the run."""

    def __init__(self, ignore: bool = False, on_signal: Callable[[], None] | None = None) -> None:
        self.ignore = ignore
        self.on_signal = on_signal
        self.received = False
        self.saved: dict[int, Any] = {}
        self._unraisable = sys.unraisablehook

    def _handle(self, signum: int, frame: Any) -> None:
        if self.ignore or self.received:
            return
        self.received = True
        if self.on_signal is not None:
            self.on_signal()
        raise RunInterrupted

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handle)
            if self.on_signal is not None:
                self._unraisable = sys.unraisablehook
                sys.unraisablehook = self._lost
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
        if self.on_signal is not None and sys.unraisablehook == self._lost:
            sys.unraisablehook = self._unraisable

    def _lost(self, unraisable: Any) -> None:
        """``sys.unraisablehook``: the exception of the handler, lost where it was raised
        (``on_signal`` was told), is not reported; anything else is, as before."""
        if not isinstance(unraisable.exc_value, RunInterrupted):
            self._unraisable(unraisable)


def ignore_signals_until_exit() -> None:
    """After a Ctrl-C, further SIGINT/SIGTERM are ignored until the process exits, so the
    summary and the record are written whole (Python's shutdown keeps SIG_IGN)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
