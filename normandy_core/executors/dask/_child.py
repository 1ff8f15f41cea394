"""In the child processes a Dask worker runs its attempts in (see :mod:`._remote`): workers
of a :class:`~normandy_core.executors._pool.WorkerPool`, whose lifeline's writing end the
Dask worker holds (they die with it, however it dies)."""

from __future__ import annotations

from typing import Any

from normandy_core.executors.dask._protocol import End
from normandy_core.worker import TaskCall, TaskResult, init_worker, run_task

_queue: Any = None


def init_child(log_queue: Any) -> None:
    """Pool initializer: the ``local`` executor's, without the project's import paths
    (a Dask worker has its own environment)."""
    global _queue
    _queue = log_queue
    init_worker(log_queue, ())


def run_in_child(call: TaskCall) -> TaskResult:
    try:
        return run_task(call)
    finally:
        _queue.put(End(call.key, call.attempt))  # after every record of this attempt
