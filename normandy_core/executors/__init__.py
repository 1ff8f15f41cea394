"""Execution engines. An executor runs :class:`~normandy_core.worker.TaskCall` objects and
returns futures of :class:`~normandy_core.worker.TaskResult`; everything else (steps,
retries, variables, hooks, logs) is the orchestrator's. A plugin adds an engine by
returning its class from the ``normandy_executors`` hook.

A future may also end with :class:`WorkerCrashed` (the worker process died) or
:class:`TaskTimedOut` (the executor stopped the task at its deadline). An engine that
cannot start (its cluster is unreachable…) raises
:class:`~normandy_core.errors.ExecutorError` from :meth:`Executor.start`, before any task.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from normandy_core.worker import TaskCall, TaskResult

__all__ = ["Executor", "TaskTimedOut", "WorkerCrashed", "WorkerSetup", "warm_up"]


def warm_up() -> None:
    """Start the fork server that the workers of local pools are forked from, now, in the
    background: its start-up then overlaps with loading and checking the project. Harmless
    to call twice, or before a run that ends up not using it. (Cheap to import: the rest of
    the engine kit, :mod:`normandy_core.executors.kit`, is not loaded for it.)"""
    from normandy_core.executors._forkserver import warm_up as start

    start()


@dataclass(frozen=True)
class WorkerSetup:
    """What every worker needs before its first task.

    ``options`` are the engine's own settings: the mapping ``confs.<executor name>`` of
    the project (``confs.dask``), overridden by the command line (``--address``).
    ``store`` is the run's folder of the variables storage (a path or a URL): every
    worker must reach it. ``modules`` are the modules of the processes the run may call,
    which an engine may import ahead of the first task, once for all its workers (the
    ``local`` executor's fork server does; empty with ``confs.preload: false``), in the
    order the run first needs them; ``first_modules`` those the first step needs.
    """

    log_queue: Any
    sys_path: tuple[str, ...] = field(default_factory=tuple)
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    store: str = ""
    run_id: str = ""
    modules: tuple[str, ...] = ()
    first_modules: tuple[str, ...] = ()


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

    #: whether tasks run in worker processes (a log queue between processes is needed)
    uses_processes: bool = True

    #: where the tasks run, in words, for the run's first log line (set by ``start``)
    description: str = ""

    #: whether the workers are forked from this process's fork server (the engine kit's
    #: :func:`~normandy_core.executors.kit.warm_up`), which can import the run's process
    #: modules for them as soon as the plan is known (``setup.modules``)
    preloads: bool = False

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

    def start(self) -> None:  # noqa: B027 - optional
        """Prepare workers (called once, before the first submit); raise
        :class:`~normandy_core.errors.ExecutorError` if they cannot be reached."""

    @abstractmethod
    def submit(self, call: TaskCall, timeout: float | None = None) -> Future[TaskResult]:
        """Start ``call``; the future ends with its result, ``WorkerCrashed`` or
        ``TaskTimedOut``."""

    @abstractmethod
    def shutdown(self, *, cancel: bool = False) -> None:
        """Stop every worker; with ``cancel``, kill the tasks still running."""
