"""Running one task, in a worker process (or in the orchestrator with ``serial``).

A worker receives a :class:`TaskCall` naming the process's target, imports it itself
(cached per worker, never a pickled function), calls it with the arguments it asks for,
and returns a :class:`TaskResult`. What the process logs or prints is sent, masked and
tagged with its flow/step/task, to the orchestrator's log queue.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from normandy_core.logs import start_notice
from normandy_core.masking import Masker, secret_values
from normandy_core.pipe import Pipe, reset_current, set_current
from normandy_core.registry import call_arguments, import_target
from normandy_core.store import Variables
from normandy_core.tasklog import LogWriter, task_logger

__all__ = ["Masker", "TaskCall", "TaskResult", "init_worker", "run_task", "secret_values"]

_imported: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {}
_log_queue: Any = None


@dataclass(frozen=True)
class TaskCall:
    """Everything a worker needs to run one attempt of a task: plain, picklable data."""

    run_id: str
    flow: str
    step: str
    task: str
    key: str
    process: str
    target: str
    params: dict[str, Any]
    tags: tuple[str, ...]
    env: str
    confs: dict[str, Any]
    credentials: dict[str, Any]
    root: str
    vars_dir: str
    """The flow's committed variables: a path, or a URL of the store."""
    staging_dir: str
    """This task's writes until they are committed: a path, or a URL of the store."""
    attempt: int = 1
    log_level: int = logging.INFO
    masks: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TaskResult:
    """How an attempt ended in its worker."""

    key: str
    ok: bool
    pid: int
    started: float
    ended: float
    error_type: str = ""
    error_message: str = ""
    traceback: str = ""


def init_worker(log_queue: Any, sys_path: Iterable[str]) -> None:
    """Pool initializer: where to send log records, and the project's import paths.

    The worker leads its own process group, and SIGTERM (how a pool stops a worker at a
    task's timeout or at Ctrl-C) kills the whole group: what a task started dies with it.
    """
    global _log_queue
    _log_queue = log_queue
    os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, _kill_group)
    for entry in reversed(list(sys_path)):
        if entry not in sys.path:
            sys.path.insert(0, entry)


def _kill_group(signum: int, frame: Any) -> None:
    if os.getpgid(0) == os.getpid():  # never the orchestrator's group
        os.killpg(0, signal.SIGKILL)
    os._exit(128 + signum)


def run_task(call: TaskCall, log_queue: Any = None) -> TaskResult:
    """Run one attempt of a task and report how it ended (never raises for the process)."""
    started = time.time()
    masker = Masker(call.masks)
    queue = log_queue if log_queue is not None else _log_queue
    if queue is not None:  # first in the queue, before anything the task logs
        queue.put(start_notice(call.flow, call.key, call.attempt, os.getpid(), started))
    logger = task_logger(call, queue, masker)
    vars_ = Variables(call.vars_dir, call.staging_dir)
    pipe = Pipe(
        env=call.env,
        confs=call.confs,
        credentials=call.credentials,
        path=Path(call.root),
        vars=vars_,
        params=dict(call.params),
        run_id=call.run_id,
        flow=call.flow,
        step=call.step,
        process=call.process,
        task=call.task,
        tags=call.tags,
    )
    token = set_current(pipe)
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = LogWriter(logger, logging.INFO)  # type: ignore[assignment]
    sys.stderr = LogWriter(logger, logging.WARNING)  # type: ignore[assignment]
    try:
        fn, wanted = _load(call)
        available = {"pipe": pipe, "log": logger, "params": pipe.params}
        fn(**{name: available[name] for name in wanted})
    except BaseException as exc:  # the process's failure, whatever it is, is reported
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # hide this frame
        text = masker.format_exception(exc, tb)
        return TaskResult(
            call.key,
            False,
            os.getpid(),
            started,
            time.time(),
            type(exc).__name__,
            masker(str(exc)),
            text,
        )
    finally:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, LogWriter):
                stream.flush()
        sys.stdout, sys.stderr = stdout, stderr
        reset_current(token)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
    return TaskResult(call.key, True, os.getpid(), started, time.time())


def _load(call: TaskCall) -> tuple[Callable[..., Any], tuple[str, ...]]:
    cached = _imported.get(call.target)
    if cached is None:
        if call.root not in sys.path:
            for folder in (Path(call.root), Path(call.root) / "src"):
                if folder.is_dir() and str(folder) not in sys.path:
                    sys.path.insert(0, str(folder))
        fn = import_target(call.target, call.process)
        cached = _imported[call.target] = (fn, call_arguments(fn, call.process, call.target))
    return cached
