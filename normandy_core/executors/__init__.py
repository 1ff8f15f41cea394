"""Execution engines. An executor runs :class:`~normandy_core.worker.TaskCall` objects and
returns futures of :class:`~normandy_core.worker.TaskResult`; everything else (steps,
retries, variables, hooks, logs) is the orchestrator's. A plugin adds an engine by
returning its class from the ``normandy_executors`` hook.

The orchestrator calls, for any engine, in this order: the constructor; :meth:`Executor.
warm_up` once it knows a task will run (never for a run whose every task is reused);
:meth:`Executor.prepare` with the modules of a step before its tasks (and of the next
step, while a step runs); :meth:`Executor.start`; :meth:`Executor.submit` for each
attempt; :meth:`Executor.shutdown` at the end; :meth:`Executor.stop_now` from a signal's
handler, when a second Ctrl-C asks to stop at once.

A future may also end with :class:`WorkerCrashed` (the worker process died) or
:class:`TaskTimedOut` (the executor stopped the task at its deadline). An engine that
cannot start (its cluster is unreachable…) raises
:class:`~normandy_core.errors.ExecutorError` from :meth:`Executor.start`, before any task.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from normandy_core.worker import TaskCall, TaskResult

__all__ = ["Executor", "TaskTimedOut", "WorkerCrashed", "WorkerSetup"]


@dataclass(frozen=True)
class WorkerSetup:
    """What every worker needs before its first task.

    ``options`` are the engine's own settings: the mapping ``confs.<executor name>`` of
    the project (``confs.dask``), overridden by the command line (``--address``).
    ``store`` is the run's folder of the variables storage (a path or a URL): every
    worker must reach it. ``log_queue`` is where the records of the tasks go (with
    :attr:`Executor.uses_processes`, a queue whose ``writer`` is a pipe's descriptor that
    worker processes write to); ``log_level`` the run's.
    """

    log_queue: Any
    sys_path: tuple[str, ...] = field(default_factory=tuple)
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    store: str = ""
    run_id: str = ""
    log_level: int = logging.INFO
    head_start: Any = None
    """What the command started for the engine before the run (the ``local`` executor's
    fork server, see :func:`normandy_core.executors.local.start_fork_server`): an engine
    that can use it adopts it; any other leaves it alone."""


class WorkerCrashed(Exception):
    """The worker running a task died; ``exitcode`` is its exit status (negative: signal).
    ``detail`` replaces the message where the exit status is unknown (a remote worker)."""

    def __init__(
        self, exitcode: int | None, pid: int | None = None, detail: str | None = None
    ) -> None:
        self.exitcode = exitcode
        self.pid = pid
        super().__init__(detail or describe_exit(exitcode))


class TaskTimedOut(Exception):
    """The task ran past its timeout and its worker was stopped."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"stopped after its timeout of {timeout:g} s; its worker was replaced")


def describe_exit(exitcode: int | None) -> str:
    import signal

    if exitcode is None:
        return "the worker died"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (SIGKILL often means the machine ran out of memory)" if -exitcode == 9 else ""
        return f"the worker was killed by {name}{hint}"
    return f"the worker exited with code {exitcode}"


class Executor(ABC):
    """Runs task calls, ``workers`` at a time. Used as a context manager for one run."""

    #: whether tasks run in processes of this machine that write their records to the
    #: run's log queue (then a pipe between processes); else records are put on it here
    uses_processes: ClassVar[bool] = True

    #: where the tasks run, in words, for the run's first log line (set by ``start``)
    description: str = ""

    def __init__(self, workers: int, setup: WorkerSetup) -> None:
        self.workers = workers
        self.setup = setup

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this engine cannot be used here (a missing optional dependency, with the
        command that installs it), else ``None``. Checked with the configuration, before
        a run starts, so it must be quick and import nothing heavy."""
        return None

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(cancel=exc[0] is not None)

    def warm_up(self) -> None:  # noqa: B027 - optional
        """Start, in the background, what takes time to start (a fork server, a
        connection). Called as soon as a task is known to run: before :meth:`start` where
        no task can be reused, else when the first step with a task to run has decided;
        not at all where every task is reused. May be called twice."""

    def prepare(self, modules: Sequence[str]) -> None:  # noqa: B027 - optional
        """The modules the next tasks import, in the order they need them — their
        process modules, then the modules each imported when it last ran (SPEC 20,
        ``TaskCall.modules``): an engine may import them ahead, once for all its workers
        (the ``local`` one does, in its fork server). Called before each step with its
        modules, and during a step with the next step's; any number of times, with
        modules already given too. Must return at once."""

    def start(self) -> None:  # noqa: B027 - optional
        """Prepare workers (called once, before the first submit); raise
        :class:`~normandy_core.errors.ExecutorError` if they cannot be reached."""

    def stop_now(self) -> None:  # noqa: B027 - optional
        """Kill every task at once (a second Ctrl-C): called from a signal's handler, so
        it must take no lock; :meth:`shutdown` follows."""

    @abstractmethod
    def submit(self, call: TaskCall, timeout: float | None = None) -> Future[TaskResult]:
        """Start ``call``; the future ends with its result, ``WorkerCrashed`` or
        ``TaskTimedOut``."""

    @abstractmethod
    def shutdown(self, *, cancel: bool = False) -> None:
        """Stop every worker; with ``cancel``, kill the tasks still running."""
