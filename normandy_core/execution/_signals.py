"""Ctrl-C and SIGTERM during a run (SPEC 17): the first stops it (as
:class:`~normandy_core._interrupt.RunInterrupted`, a ``KeyboardInterrupt``); a second one
while it is being stopped kills its tasks at once (``on_second``), and the record is
still written whole; once it is, further signals are ignored until the process exits, so
that the exit status is the record's. Whatever happens, ``normandy`` is gone
:data:`STOP_LIMIT` seconds after the first signal. A process's own ``KeyboardInterrupt``
is not one of these: it fails its task.

Python runs a signal's handler between two bytecodes of the main thread, wherever it is:
inside a garbage collector's callback (Dask installs one), a ``__del__`` or a library's
``except BaseException``, the exception it raises is lost. So the handler first tells the
run (``on_signal``: the scheduler's inbox), which raises it again where it next waits; and
Python's report of the lost exception ("Exception ignored in…", a traceback on stderr) is
left out, since the run is stopped all the same."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from normandy_core._children import kill_below
from normandy_core._interrupt import RunInterrupted

STOP_LIMIT = 9.0
"""Seconds after the first signal by which ``normandy`` has ended, whatever holds it (a
plugin's hook that never returns, a reader that never reads its output): past them, what
is below it is killed and it exits 130. Its run then reads as interrupted (its process is
gone), as the exit status says."""


class Interrupts:
    """SIGINT and SIGTERM as :class:`RunInterrupted`, once; a second signal calls
    ``on_second`` (kill the tasks at once) instead. With ``ignore``, both are ignored
    inside the block. ``on_signal`` is called (in the handler: it must be reentrant)
    before the exception is raised, so that a lost exception still stops the run. The
    same object may be entered again (its count of signals is kept)."""

    def __init__(
        self,
        ignore: bool = False,
        on_signal: Callable[[], None] | None = None,
        on_second: Callable[[], None] | None = None,
        *,
        for_good: bool = False,
    ) -> None:
        self.ignore = ignore
        self.for_good = for_good
        """With ``ignore``: signals stay ignored after the block, until the process exits
        (the run's end is recorded: the exit status is the record's)."""
        self.on_signal = on_signal
        self.on_second = on_second
        self.received = False
        self.second = False
        self.saved: dict[int, Any] = {}
        self._unraisable = sys.unraisablehook

    def _handle(self, signum: int, frame: Any) -> None:
        if self.ignore:
            return
        if self.received:
            if not self.second and self.on_second is not None:
                self.second = True
                self.on_second()
            return
        self.received = True
        start_deadline()
        if self.on_signal is not None:
            self.on_signal()
        raise RunInterrupted

    def stopped(self) -> None:
        """The run is being stopped (whatever raised the interrupt): the next signal is a
        second one."""
        if not self.received:
            self.received = True
            start_deadline()

    def __enter__(self) -> Interrupts:
        self.saved = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handle)
            if self.on_signal is not None:
                self._unraisable = sys.unraisablehook
                sys.unraisablehook = self._lost
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, signal.SIG_IGN if self.for_good else handler)
        if self.on_signal is not None and sys.unraisablehook == self._lost:
            sys.unraisablehook = self._unraisable

    def _lost(self, unraisable: Any) -> None:
        """``sys.unraisablehook``: the exception of the handler, lost where it was raised
        (``on_signal`` was told), is not reported; anything else is, as before."""
        if not isinstance(unraisable.exc_value, RunInterrupted):
            self._unraisable(unraisable)


_deadline: list[threading.Event] = []  # the process's one deadline, once started


def start_deadline(limit: float = STOP_LIMIT) -> None:
    """From now, ``normandy`` has ``limit`` seconds to record its run's end (see
    :data:`STOP_LIMIT`)."""
    if _deadline:
        return
    met = threading.Event()
    _deadline.append(met)
    thread = threading.Thread(target=_expire, args=(met, limit), name="normandy-deadline")
    thread.daemon = True
    thread.start()


def deadline_met() -> None:
    """The run's end is recorded: what is left (writing the summary) may take its time,
    as the reader of ``normandy``'s output decides."""
    for met in _deadline:
        met.set()


def _expire(met: threading.Event, limit: float) -> None:
    if met.wait(limit):
        return
    kill_below(os.getpid())
    os._exit(130)
