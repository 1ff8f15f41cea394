"""How a real Ctrl-C is told from a process's own ``KeyboardInterrupt`` (SPEC 4, 7), and
the sections a signal must not cut in two.

Only a SIGINT or SIGTERM received by ``normandy`` interrupts a run: its handler raises
:class:`RunInterrupted` in the orchestrator's main thread. A ``KeyboardInterrupt`` (or
``SystemExit``) that a process raises itself is a failure of that task alone, like any
other exception — which matters under ``serial``, where processes run in the
orchestrator's own thread, below its handler.

Python runs a signal's handler between two bytecodes of the main thread, wherever it is.
What must happen whole (a history transaction: ``BEGIN`` … ``COMMIT``) runs inside
:func:`deferred_signals`: a signal arriving there is held, and handled, by whatever
handler was in place, once the section is over.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["RunInterrupted", "deferred_signals"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(KeyboardInterrupt):
    """``normandy`` received SIGINT or SIGTERM: the run is being stopped."""


@contextmanager
def deferred_signals() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block ends, then go to the handler that was in
    place (Python's default ones included: ``KeyboardInterrupt``, or the end of the
    process for SIGTERM). Outside the main thread, where no handler runs, it does nothing.
    Nested blocks hand what they held to the outer one."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        held.append(signum)

    saved: dict[int, Any] = {sig: signal.signal(sig, hold) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        if held:
            _deliver(held[0], saved[held[0]])


def _deliver(signum: int, handler: Any) -> None:
    """What ``handler`` would have done with ``signum``, now."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_IGN:
        return
    elif signum == signal.SIGINT:  # Python's default handler
        raise KeyboardInterrupt
    else:  # the system's default: the process ends, by that signal
        os.kill(os.getpid(), signum)
