"""Ctrl-C and SIGTERM during a run: the first stops it (as
:class:`~normandy_core._interrupt.RunInterrupted`, a ``KeyboardInterrupt``), a second one
while it is being stopped is ignored, so the record is written whole. A process's own
``KeyboardInterrupt`` is not one of these: it fails its task."""

from __future__ import annotations

import signal
import threading
from typing import Any

from normandy_core._interrupt import RunInterrupted


class Interrupts:
    """SIGINT and SIGTERM as :class:`RunInterrupted`, once: a second signal while the run
    is being stopped is ignored. With ``ignore``, both are ignored inside the block."""

    def __init__(self, ignore: bool = False) -> None:
        self.ignore = ignore
        self.received = False
        self.saved: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.ignore or self.received:
            return
        self.received = True
        raise RunInterrupted

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def ignore_signals_until_exit() -> None:
    """After a Ctrl-C, further SIGINT/SIGTERM are ignored until the process exits, so the
    summary and the record are written whole (Python's shutdown keeps SIG_IGN)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
