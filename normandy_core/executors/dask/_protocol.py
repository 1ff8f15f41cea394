"""What travels between the orchestrator, the Dask workers and their child processes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not imported to list the executors (normandy list, validate)
    from normandy_core.store import Place
    from normandy_core.worker import TaskCall, TaskResult

TOPIC = "normandy-logs"
"""The Dask event topic of log records; one topic for every run (the scheduler keeps a
bounded history per topic), each event naming its run."""

DONE, CRASHED, TIMED_OUT, CANCELLED, RERUN = "done", "crashed", "timed out", "cancelled", "rerun"


@dataclass(frozen=True)
class Reply:
    """How an attempt ended on a Dask worker (``worker``: its address).

    ``kind`` is ``done`` (``result`` holds the process's success or failure), ``crashed``
    (the child process died: ``exitcode``, ``pid``), ``timed out``, ``cancelled`` (the run
    was stopped), or ``rerun``: Dask ran the attempt a second time after losing the worker
    that had started it, which Normandy refuses (an attempt runs at most once).
    """

    kind: str
    worker: str
    result: TaskResult | None = None
    exitcode: int | None = None
    pid: int | None = None


def started_marker(call: TaskCall) -> Place:
    """A file in the attempt's staging folder, written when a worker starts it: how a
    second start (Dask rescheduling after a lost worker) is told from a first one, on any
    cluster, whatever its ``allowed-failures``."""
    from normandy_core.store import place

    return place(call.staging_dir) / f".started-{call.attempt}"
