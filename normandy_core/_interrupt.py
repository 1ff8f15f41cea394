"""How a real Ctrl-C is told from a process's own ``KeyboardInterrupt`` (SPEC 4, 7).

Only a SIGINT or SIGTERM received by ``normandy`` interrupts a run: its handler raises
:class:`RunInterrupted` in the orchestrator's main thread. A ``KeyboardInterrupt`` (or
``SystemExit``) that a process raises itself is a failure of that task alone, like any
other exception — which matters under ``serial``, where processes run in the
orchestrator's own thread, below its handler.
"""

from __future__ import annotations

__all__ = ["RunInterrupted"]


class RunInterrupted(KeyboardInterrupt):
    """``normandy`` received SIGINT or SIGTERM: the run is being stopped."""
