"""The statuses of tasks and runs, and how they are counted where people read them
(``normandy run``'s progress and summary, ``normandy runs``, ``normandy report``).

A task's recorded status says how it ended (``failed``, ``crashed``, ``timed out``…); a
*tally* folds it, with its ``tolerated`` and ``resumed`` flags, into what a reader scans
for: what got done, what failed, what was tolerated, what did not run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

SUCCEEDED = "succeeded"
FAILED = "failed"
CRASHED = "crashed"
TIMED_OUT = "timed out"
INTERRUPTED = "interrupted"
NOT_STARTED = "not started"
CACHED = "cached"
"""Not run: an earlier success whose fingerprint is unchanged stands for it (SPEC 13)."""
RUNNING = "running"
"""Recorded while an attempt (or a run) runs: seen only in a run that is still going."""

RUN_STATUSES = (SUCCEEDED, FAILED, INTERRUPTED, RUNNING)
"""What a run's recorded status can be: how it ended, or ``running``. A run that ends
early for any reason is recorded ``failed`` (an error) or ``interrupted`` (a signal, or its
process killed), never ``succeeded`` (SPEC 8)."""

FAILURES = (FAILED, CRASHED, TIMED_OUT)
"""The statuses of a task whose last attempt failed."""

# tally categories besides the statuses above, and the order they are shown in
TOLERATED, RESUMED = "tolerated", "resumed"
CATEGORIES = (SUCCEEDED, CACHED, FAILED, TOLERATED, INTERRUPTED, RESUMED, NOT_STARTED, RUNNING)


def category(status: str, tolerated: bool = False, resumed: bool = False) -> str:
    """The tally category of a task: ``succeeded``, ``cached`` (an earlier success stands
    for it: reused, or resumed), ``failed`` (crashed and timed out included),
    ``tolerated``, ``interrupted``, ``resumed`` (a task a run of an older Normandy resumed,
    recorded as succeeded), ``not started`` (a task still pending counts here too) or, in a
    run that is still going, ``running``."""
    if status == CACHED:
        return CACHED
    if resumed:
        return RESUMED
    if status in (SUCCEEDED, CACHED):
        return status
    if status in FAILURES:
        return TOLERATED if tolerated else FAILED
    if status in (INTERRUPTED, RUNNING):
        return status
    return NOT_STARTED


def label(
    status: str, tolerated: bool = False, resumed: bool = False, cached_from: str | None = None
) -> str:
    """A task's status as tables show it: ``failed (tolerated)``, ``succeeded (earlier
    run)``, ``cached (from RUN_ID)`` (reused or resumed alike)."""
    if status == CACHED and cached_from:
        return f"cached (from {cached_from})"
    return status + (" (tolerated)" if tolerated else "") + (" (earlier run)" if resumed else "")


def tally(tasks: Iterable[tuple[str, bool, bool]]) -> dict[str, int]:
    """``(status, tolerated, resumed)`` of each task -> the non-zero counts by category,
    in :data:`CATEGORIES` order."""
    counts = Counter(category(*task) for task in tasks)
    return {name: counts[name] for name in CATEGORIES if counts[name]}


def describe_tally(counts: dict[str, int]) -> str:
    """``{"succeeded": 3, "failed": 1}`` -> ``3 succeeded, 1 failed``."""
    return ", ".join(f"{n} {name}" for name, n in counts.items()) or "no task"
