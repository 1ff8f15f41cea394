"""The ``local`` executor: a pool of worker processes, reused for the whole run, forked
from a fork server that imports the run's process modules once for all of them.

Every process it starts is owned by one object, :class:`LocalExecutor`: its fork server
(:class:`~._server.ForkServer`), its workers (:class:`~._pool.WorkerPool`) and the
descriptor through which their log records come back (the run's log queue). Nothing is
held in module globals, nothing depends on ``multiprocessing``'s start methods, and the
workers of a ``normandy`` killed by SIGKILL exit within a second (see :mod:`._worker`).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

from normandy_core.executors import Executor, WorkerSetup

if TYPE_CHECKING:  # the pool and the worker only for a run: not to list executors
    from normandy_core.executors.local._pool import WorkerPool
    from normandy_core.executors.local._server import ForkServer, Imports
    from normandy_core.worker import TaskCall, TaskResult

__all__ = ["LocalExecutor", "start_fork_server"]


class LocalExecutor(Executor):
    """Runs tasks on ``workers`` worker processes of this machine."""

    def __init__(self, workers: int, setup: WorkerSetup) -> None:
        super().__init__(workers, setup)
        self._server: ForkServer | None = None
        self._pool: WorkerPool | None = None
        self._level = setup.log_level
        from normandy_core.executors.local._preload import disabled

        self._preloads = not disabled()

    def warm_up(self) -> None:
        if self._server is None and self._pool is None:
            self._server = self._adopted() or _new_server(self)
            self._server.start()

    def _adopted(self) -> ForkServer | None:
        """The server started for this run ahead of it (:func:`start_fork_server`), if
        any is there and alive: it has imported the worker's code meanwhile."""
        from normandy_core.executors.local._server import ForkServer

        server = self.setup.head_start
        if not isinstance(server, ForkServer) or server.adopted or not server.alive:
            return None
        server.adopted = True
        server.on_report = self._reported
        return server

    def prepare(self, modules: Sequence[str]) -> None:
        if self._preloads and modules:
            self._start_pool().prepare(modules)

    def start(self) -> None:
        self._start_pool()

    def submit(self, call: TaskCall, timeout: float | None = None) -> Future[TaskResult]:
        self._level = call.log_level
        return self._start_pool().submit(call, timeout)

    def shutdown(self, *, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.close(cancel=cancel)
        elif self._server is not None:
            self._server.close()

    def stop_now(self) -> None:
        if self._pool is not None:
            self._pool.kill_now()
        elif self._server is not None:
            self._server.kill()

    def _start_pool(self) -> WorkerPool:
        if self._pool is None:
            from normandy_core.executors.local._pool import WorkerPool
            from normandy_core.executors.local._preload import budget
            from normandy_core.executors.local._server import import_path
            from normandy_core.executors.local._worker import Boot

            self._pool = WorkerPool(
                self.workers,
                self.setup.log_queue.writer,
                Boot(tuple(self.setup.sys_path), python_path=import_path()),
                self._next_server,
                budget=budget(),
                report=self._line,
            )
        return self._pool

    def _next_server(self) -> ForkServer:
        """The warmed-up server the first time, then a new one."""
        server, self._server = self._server, None
        return server or _new_server(self)

    def _reported(self, imports: Imports) -> None:
        from normandy_core.executors.local._preload import describe

        for warning, text in describe(imports.report):
            self._line(text, warning)

    def _line(self, text: str, warning: bool) -> None:
        from normandy_core.executors.local._preload import put_line

        put_line(self.setup.log_queue, self._level, text, warning)


def start_fork_server() -> ForkServer:
    """A fork server started now, ahead of a run: its interpreter starts and imports the
    worker's code while the command reads and checks the project. Give it to the run
    (:attr:`~normandy_core.executors.WorkerSetup.head_start`); the ``local`` executor
    adopts it (:attr:`ForkServer.adopted`), and closes it with the run. One not adopted
    (another executor, a run that never started) is its starter's to close."""
    from normandy_core.executors.local._pool import BASE
    from normandy_core.executors.local._server import ForkServer

    server = ForkServer(BASE)
    server.start()
    return server


def _new_server(executor: LocalExecutor) -> ForkServer:
    """(Not ``_server``: that is the name of the submodule, an attribute of this package.)"""
    from normandy_core.executors.local._pool import BASE
    from normandy_core.executors.local._server import ForkServer

    return ForkServer(BASE, on_report=executor._reported)
