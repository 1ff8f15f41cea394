"""The worker pool of the ``local`` engine: ``size`` worker processes forked from a fork
server, each running one task call at a time, replaced when one dies.

One socket per worker, and the pool decides which worker runs which attempt: an attempt
is never lost between two threads' views of it (pebble's pool read that a worker took a
task in one thread and found dead workers in another: a worker dying at the task's first
line could be matched to no task, hanging the run or breaking the pool). A worker's end
is known from its fork server, which is its parent and reports its exit status.

- A timeout, a cancel or the pool's end with ``cancel`` kills the worker running the
  attempt with everything below it; the attempt's future ends at once and the worker is
  replaced.
- Workers are forked only when there is work for them: a run whose tasks are all reused
  starts none.
- A worker is forked after the modules its attempt needs were imported by the server
  where they were ordered (:meth:`WorkerPool.prepare`): between two steps, an idle worker
  that lacks them is replaced by one that has them. Never longer than the preload
  budget: past it, a server still importing is left alone and a new one forks the
  workers, which import what they need themselves.
- Every wait is bounded; the pool's end never waits on a thread that may never return.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

from normandy_core._children import kill_below
from normandy_core.executors import TaskTimedOut, WorkerCrashed
from normandy_core.executors.local._server import ForkServer, Imports
from normandy_core.executors.local._wire import receive_plain, send
from normandy_core.executors.local._worker import Boot
from normandy_core.worker import TaskCall, TaskResult

log = logging.getLogger(__name__)

BASE = ("normandy_core.executors.local._worker", "ctypes")
"""What a worker needs, imported once in its fork server (the worker code, Normandy's
task runner and what it imports; ctypes, with which a worker becomes a subreaper)."""

_TICK = 0.5
_STOP_WAIT = 2.0
_LOOK_AHEAD = 64
"""Attempts looked at, past those waiting for their modules' imports, for one a worker
can run now (tasks of several steps are queued at once under ``schedule: dataflow``)."""


@dataclass
class _Job:
    call: TaskCall
    timeout: float | None
    future: Future[TaskResult]
    module: str
    mark_ends: bool = False


@dataclass
class _Worker:
    conn: socket.socket
    server: ForkServer
    modules: frozenset[str]
    pid: int | None = None
    ready: bool = False
    job: _Job | None = None
    deadline: float | None = None
    stopping: bool = False
    buffered: list[Any] = field(default_factory=list)


class WorkerPool:
    """``size`` workers (see the module's docstring) whose task records go to the log
    queue whose writing descriptor is ``log_fd``. ``make_server()`` starts a fork server
    (the engine's, warmed up already, the first time). ``budget``: seconds a fork may wait
    for the server's imports."""

    def __init__(
        self,
        size: int,
        log_fd: int,
        boot: Boot,
        make_server: Callable[[], ForkServer],
        *,
        budget: float = 60.0,
        report: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.size = size
        self._log_fd = log_fd
        self._boot = boot
        self._make_server = make_server
        self._budget = budget
        self._report = report or (lambda text, warning: None)
        self._lock = threading.RLock()
        self._worker_gone = threading.Condition(self._lock)
        self._pending: deque[_Job] = deque()
        self._workers: dict[socket.socket, _Worker] = {}
        self._by_pid: dict[int, _Worker] = {}
        self._exits: dict[int, int | None] = {}  # reported before the pid was known here
        self._server: ForkServer | None = None
        self._servers: list[ForkServer] = []
        self._wanted: dict[str, Imports] = {}  # module -> the order importing it
        self._closing = False
        self._false_starts = 0  # workers that died before they could take a task, in a row
        self._broken: str | None = None  # why no worker can start, once that is clear
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._lifeline_r, self._lifeline_w = os.pipe()  # only this process writes
        self._thread = threading.Thread(target=self._manage, name="normandy-pool", daemon=True)
        self._thread.start()

    # -- the owner's side ----------------------------------------------------------------

    def server(self) -> ForkServer:
        """The fork server workers are forked from now (started on first use)."""
        with self._lock:
            if self._server is None or not self._server.alive:
                self._server = self._make_server()
                self._server.on_exit = self._exited
                self._server.start()
                self._servers.append(self._server)
            return self._server

    def prepare(self, modules: Sequence[str]) -> Imports:
        """Have the server import ``modules`` for the workers forked from now on. The
        workers the attempts submitted before need are ordered first: the server carries
        out its orders one at a time, and the modules of a later step (imported ahead
        while this one runs) must not hold up the forks of this step's workers."""
        server = self.server()
        with self._lock:
            if self._pending and self._broken is None and not self._closing:
                self._dispatch()
            imports = server.prepare(modules, self._boot.sys_path)
            for module in imports.modules:
                self._wanted[module] = imports
        self._wake()
        return imports

    def submit(
        self, call: TaskCall, timeout: float | None = None, *, mark_ends: bool = False
    ) -> Future[TaskResult]:
        """Run one attempt; the future ends with its result, :class:`WorkerCrashed` or
        :class:`TaskTimedOut`. Cancelling it stops the worker running it."""
        future: Future[TaskResult] = Future()
        job = _Job(call, timeout, future, call.target.partition(":")[0], mark_ends)
        future.add_done_callback(lambda f: self._cancelled(job) if f.cancelled() else None)
        with self._lock:
            if self._closing:
                raise RuntimeError("the pool is closed")
            if self._broken is not None:
                _fail(future, WorkerCrashed(None, None, self._broken))
                return future
            self._pending.append(job)
        self._wake()
        return future

    def close(self, *, cancel: bool = False, timeout: float | None = None) -> None:
        """Stop the pool: with ``cancel`` the running attempts are stopped (their futures
        cancelled), else they end first (for ``timeout`` seconds at most). Every worker,
        what it started and the servers are gone when it returns. Never waits for ever."""
        with self._lock:
            self._closing = True
            if cancel:
                for job in list(self._pending):
                    job.future.cancel()
                self._pending.clear()
        self._wake()
        if not cancel:
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._busy() and (deadline is None or time.monotonic() < deadline):
                time.sleep(0.01)
        self._stop_workers(cancel)
        self._wake()
        self._thread.join(_STOP_WAIT)
        for server in self._servers:
            server.close()
        if not self._thread.is_alive():
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()
        with contextlib.suppress(OSError):
            os.close(self._lifeline_w)  # a worker still there (it cannot be) goes
        with contextlib.suppress(OSError):
            os.close(self._lifeline_r)

    def kill_now(self) -> None:
        """SIGKILL every worker and server, at once, taking no lock (a signal's handler
        calls it while another thread may hold one)."""
        for pid in list(self._by_pid):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        for server in list(self._servers):
            server.kill()

    # -- the manager thread ----------------------------------------------------------------

    def _manage(self) -> None:
        while True:
            with self._lock:
                if self._closing and not self._workers and not self._pending:
                    return
                self._dispatch()
                wait = self._next_wake()
            for key, _ in self._selector.select(wait):
                if key.fileobj is self._wake_r:
                    with contextlib.suppress(OSError):
                        while self._wake_r.recv(4096):
                            pass
                else:
                    self._readable(key.fileobj)  # type: ignore[arg-type]
            self._deadlines()

    def _next_wake(self) -> float:
        now = time.monotonic()
        soonest = [w.deadline for w in self._workers.values() if w.deadline is not None]
        return max(0.0, min([_TICK, *(d - now for d in soonest)]))

    def _dispatch(self) -> None:
        """Hand pending attempts to idle workers; fork workers where there are too few.
        Costs what the idle workers and the attempts they take cost, not the length of
        the queue (a step of 2,000 tasks queues 2,000)."""
        self._check_budget()
        idle = [w for w in self._workers.values() if w.ready and w.job is None and not w.stopping]
        skipped: list[_Job] = []
        waiting: set[str] = set()  # modules the attempts skipped wait for
        while idle and self._pending:
            job = self._pending.popleft()
            if job.future.cancelled():
                continue
            worker = None if job.module in waiting else self._idle_for(job, idle)
            if worker is None:
                waiting.add(job.module)
                skipped.append(job)
                if len(skipped) >= max(self.size, _LOOK_AHEAD):  # most wait for the same
                    break
                continue
            idle.remove(worker)
            self._run(worker, job)
        self._pending.extendleft(reversed(skipped))
        if self._broken is not None:
            return
        live = sum(not w.stopping for w in self._workers.values())
        for _ in range(min(self.size, live + len(self._pending)) - live):
            self._fork()  # carried out after the imports ordered before: it will have them

    def _idle_for(self, job: _Job, idle: list[_Worker]) -> _Worker | None:
        server = self._server
        # what it imported when it last ran, where the server has it now (SPEC 20)
        learned = [m for m in job.call.modules if server is not None and m in server.imported]
        for worker in idle:
            if job.module in worker.modules and all(m in worker.modules for m in learned):
                return worker
        if server is not None and job.module in server.imported:
            self._retire(idle.pop(0))  # a worker forked now has it all: this one makes room
            return None
        for worker in idle:  # its process's module there, what it learned not yet
            if job.module in worker.modules:
                return worker
        imports = self._wanted.get(job.module)
        if imports is None:
            return idle[0]  # nobody imports it for the workers: this one will
        if not imports.done.is_set():
            return None  # being imported for the workers: wait (the budget bounds it)
        return idle[0]  # its import failed there: the worker's shows the real error

    def _check_budget(self) -> None:
        """A server importing one module past the budget while work waits for a worker:
        workers are forked from a new server from now on (the old one stays, for its
        children); the module is left to the workers that need it."""
        server = self._server
        imports = server.busy_importing() if server is not None else None
        if server is None or imports is None or imports.current is None:
            return
        if time.monotonic() - imports.since <= self._budget:
            return
        waiting = [w for w in self._workers.values() if w.server is server and w.pid is None]
        if not waiting and not self._pending:
            return
        self._report(
            f"could not preload {imports.current} (still importing after {self._budget:g} s:"
            " given up): the tasks using it import it in their worker",
            False,
        )
        for module, order in list(self._wanted.items()):
            if order is imports:
                del self._wanted[module]
        self._server = None
        for worker in waiting:  # never forked: forked from the new server instead
            self._gone(worker, None)

    def _fork(self) -> None:
        server = self.server()
        ours, theirs = socket.socketpair()
        worker = _Worker(ours, server, frozenset())
        self._workers[ours] = worker
        self._selector.register(ours, selectors.EVENT_READ)
        target = "normandy_core.executors.local._worker:serve"
        try:
            pid = server.fork(
                target, (self._boot,), [theirs.fileno(), self._log_fd, self._lifeline_r]
            )
        finally:
            theirs.close()
        pid.add_done_callback(lambda f: self._forked(worker, f))

    def _forked(self, worker: _Worker, future: Future[int]) -> None:
        with self._lock:
            if future.exception() is not None:
                self._gone(worker, None)
                return
            worker.pid = future.result()
            worker.modules = worker.server.imported  # its server's, when it forked it
            self._by_pid[worker.pid] = worker
            if worker.pid in self._exits:
                self._gone(worker, self._exits.pop(worker.pid))
        self._wake()

    def _run(self, worker: _Worker, job: _Job) -> None:
        worker.job = job
        worker.deadline = None if job.timeout is None else time.monotonic() + job.timeout
        with contextlib.suppress(OSError):  # it died: its exit, reported, fails the attempt
            send(worker.conn, ("run", job.call, job.mark_ends))

    def _readable(self, conn: socket.socket) -> None:
        with self._lock:
            worker = self._workers.get(conn)
            if worker is None:
                return
            try:
                message = receive_plain(conn)
            except (EOFError, OSError):
                self._selector.unregister(conn)  # its exit tells the rest
                return
            kind = message[0]
            if kind == "ready":
                worker.ready = True
                self._false_starts = 0
            elif kind == "done":
                job, worker.job, worker.deadline = worker.job, None, None
                if job is not None:
                    _resolve(job.future, message[1])
            elif kind == "broken":
                self._report(f"a worker could not start:\n{message[1]}", True)
                self._retire(worker)
                self._false_start(None, message[1].strip().splitlines()[-1])

    def _deadlines(self) -> None:
        now = time.monotonic()
        with self._lock:
            for worker in list(self._workers.values()):
                job = worker.job
                if job is None or worker.deadline is None or worker.deadline > now:
                    continue
                worker.job = worker.deadline = None
                self._stop(worker)
                _fail(job.future, TaskTimedOut(job.timeout or 0))

    def _cancelled(self, job: _Job) -> None:
        with self._lock:
            for worker in self._workers.values():
                if worker.job is job:
                    worker.job = None
                    self._stop(worker)
        self._wake()

    def _exited(self, pid: int, code: int | None) -> None:
        """From a server's reading thread: one of its children ended."""
        with self._lock:
            worker = self._by_pid.get(pid)
            if worker is None:
                self._exits[pid] = code
                return
            self._gone(worker, code)
        self._wake()

    def _gone(self, worker: _Worker, code: int | None) -> None:
        """A worker ended: its attempt (if any) crashed; what it left is killed."""
        self._workers.pop(worker.conn, None)
        self._worker_gone.notify_all()
        if worker.pid is not None:
            self._by_pid.pop(worker.pid, None)
            _kill_group(worker.pid)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(worker.conn)
        with contextlib.suppress(OSError):
            worker.conn.close()
        job = worker.job
        if job is not None:
            _fail(job.future, WorkerCrashed(code, worker.pid))
        elif not worker.ready and not worker.stopping and not self._closing:
            self._false_start(code)

    def _false_start(self, code: int | None, why: str | None = None) -> None:
        """A worker died before it could take a task: past a few in a row, none can start
        (a broken interpreter, a full disk), and waiting attempts fail instead of a pool
        forking workers for ever."""
        self._false_starts += 1
        if self._false_starts <= 2 * self.size + 2:
            return
        from normandy_core.executors import describe_exit

        self._broken = (
            f"no worker could start: {self._false_starts} in a row ended before taking a "
            f"task (the last: {why or describe_exit(code)})"
        )
        for job in self._pending:
            _fail(job.future, WorkerCrashed(None, None, self._broken))
        self._pending.clear()

    def _retire(self, worker: _Worker) -> None:
        worker.stopping = True
        with contextlib.suppress(OSError):
            send(worker.conn, ("stop",))

    def _stop(self, worker: _Worker) -> None:
        """Kill ``worker`` with everything below it (its exit is reported after)."""
        worker.stopping = True
        if worker.pid is not None:
            kill_below(worker.pid)
            _kill_group(worker.pid)

    def _busy(self) -> bool:
        with self._lock:
            return bool(self._pending) or any(w.job is not None for w in self._workers.values())

    def _stop_workers(self, cancel: bool) -> None:
        with self._lock:
            workers = list(self._workers.values())
            for worker in workers:
                if cancel or worker.job is not None:
                    job, worker.job = worker.job, None
                    self._stop(worker)
                    if job is not None:
                        job.future.cancel()
                else:
                    self._retire(worker)
        with self._lock:
            if self._worker_gone.wait_for(lambda: not self._workers, _STOP_WAIT):
                return
        with self._lock:  # still there: no more waiting
            for worker in list(self._workers.values()):
                self._stop(worker)
                self._gone(worker, None)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def _resolve(future: Future[TaskResult], result: TaskResult) -> None:
    with contextlib.suppress(InvalidStateError):
        future.set_result(result)


def _fail(future: Future[TaskResult], error: BaseException) -> None:
    with contextlib.suppress(InvalidStateError):
        future.set_exception(error)
