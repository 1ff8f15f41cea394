"""What travels between the orchestrator, the Dask workers and their child processes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


@dataclass(frozen=True)
class End:
    """Put by a child after the records of an attempt: they have all been sent before."""

    key: str
    attempt: int


def started_marker(call: TaskCall) -> Place:
    """A file in the attempt's staging folder, written when a worker starts it: how a
    second start (Dask rescheduling after a lost worker) is told from a first one, on any
    cluster, whatever its ``allowed-failures``."""
    from normandy_core.store import place

    return place(call.staging_dir) / f".started-{call.attempt}"


_FIELDS = ("name", "levelno", "levelname", "msg", "created", "msecs", "exc_text")
_WHERE = ("flow", "step", "task", "key")


def record_to_dict(record: logging.LogRecord) -> dict[str, Any]:
    """A task's log record (already masked and formatted in its worker), or the notice of
    an attempt's start (:func:`normandy_core.logs.start_notice`), as plain data."""
    data: dict[str, Any] = {name: getattr(record, name, None) for name in _FIELDS}
    data["msg"] = str(record.msg)
    for name in _WHERE:
        value = getattr(record, name, None)
        data[name] = None if value is None else str(value)
    if getattr(record, "event", False):
        data["event"] = True
    started = getattr(record, "started", None)
    if started is not None:
        data["started"] = list(started)
    return data


def dict_to_record(data: dict[str, Any]) -> logging.LogRecord:
    record = logging.makeLogRecord(data)
    record.args = None
    if "started" in data:
        record.started = tuple(data["started"])
    return record
