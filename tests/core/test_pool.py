"""The ``local`` engine's worker pool (:mod:`normandy_core.executors.local._pool`) and its
fork server, with real worker processes and real deaths.

The race that pebble's pool had (a worker dying at its task's first line, before the pool
read that it took the task: the run hung, or every task failed) cannot happen by design
here — the pool hands each attempt to one worker over that worker's own socket — and is
tested as it was: a crash at a task's first line while another task runs, and as the
only task. Then timeouts, cancels, a dead worker replaced, the owner SIGKILLed (its
workers exit within seconds), the pool's end never hanging, and the fork server's
imports (what a worker forked after them has, the budget).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import wait
from pathlib import Path

import pytest

from normandy_core._packets import PacketQueue
from normandy_core.executors import TaskTimedOut, WorkerCrashed
from normandy_core.executors.local._pool import BASE, WorkerPool
from normandy_core.executors.local._server import ForkServer
from normandy_core.executors.local._worker import Boot
from normandy_core.worker import TaskCall

PROCS = """
import os
import time


def crash(params):
    os._exit(params.get("code", 3))


def nap(params):
    time.sleep(params["seconds"])
    return params["seconds"]


def where(pipe):
    pipe.vars["pid"] = os.getpid()


def origin(params):
    with open(params["out"], "w") as out:
        out.write(f"{os.getppid()} {os.environ.get('PYTHONPATH', '')}")


def unsettle(params):
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, lambda *args: None)
    os.chdir("/")


def frozen(params):
    import gc

    with open(params["out"], "w") as out:
        out.write(str(gc.get_freeze_count()))


def settled(params):
    import signal

    with open(params["out"], "w") as out:
        handlers = [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)]
        out.write(f"{os.getpid()} {os.getcwd()} {[getattr(h, '__name__', h) for h in handlers]}")
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "procs_pool.py").write_text(PROCS)
    (tmp_path / "vars").mkdir()
    return tmp_path


def call(folder: Path, function: str, key: str = "f.s.t", **params: object) -> TaskCall:
    return TaskCall(
        run_id="r",
        flow="f",
        step="s",
        task=key.rsplit(".", 1)[-1],
        key=key,
        process=function,
        target=f"procs_pool:{function}",
        params=dict(params),
        tags=(),
        env="dev",
        confs={},
        credentials={},
        root=str(folder),
        vars_dir=str(folder / "vars"),
        staging_dir=str(folder / "staging" / key),
    )


class Pool:
    def __init__(self, folder: Path, size: int = 2, budget: float = 60.0) -> None:
        self.queue = PacketQueue()
        self.lines: list[tuple[str, bool]] = []
        self.pool = WorkerPool(
            size,
            self.queue.writer,
            Boot((str(folder),)),
            lambda: ForkServer(BASE),
            budget=budget,
            report=lambda text, warning: self.lines.append((text, warning)),
        )

    def close(self) -> None:
        self.pool.close(cancel=True)
        self.queue.close()


@pytest.fixture
def pool(folder: Path) -> Iterator[Pool]:
    made = Pool(folder)
    yield made
    made.close()


def nap(folder: Path, seconds: float, key: str = "f.s.nap", timeout: float | None = None):
    return call(folder, "nap", key, seconds=seconds), timeout


def test_a_crash_at_a_task_s_first_line_while_another_runs(pool, folder):
    running = pool.pool.submit(*nap(folder, 1.0, "f.s.long"))
    time.sleep(0.3)
    crashed = pool.pool.submit(call(folder, "crash", "f.s.crash"))
    done, _ = wait([crashed], timeout=15)
    assert done, "the crashed task never ended"
    error = crashed.exception()
    assert isinstance(error, WorkerCrashed), error
    assert error.exitcode == 3 and error.pid is not None
    assert "exited with code 3" in str(error)
    assert running.result(timeout=15).ok
    assert pool.pool.submit(*nap(folder, 0.01)).result(timeout=15).ok  # the pool works


def test_a_crash_of_the_only_task_does_not_break_the_pool(pool, folder):
    crashed = pool.pool.submit(call(folder, "crash", "f.s.crash", code=7))
    queued = [pool.pool.submit(*nap(folder, 0.01 * i, f"f.s.n{i}")) for i in range(1, 4)]
    done, _ = wait([crashed, *queued], timeout=30)
    assert len(done) == 4, "tasks never ended"
    assert crashed.exception().exitcode == 7
    assert all(f.result().ok for f in queued)  # not failed with it


def test_a_task_leaves_its_worker_s_signal_handlers_and_folder_as_they_were(folder):
    """A worker's SIGTERM ends what its task started, then the worker: a task that takes
    it (or SIGINT) away, or moves to another folder, does so for itself alone — the next
    task on the same worker finds them as the worker set them."""
    one = Pool(folder, size=1)
    try:
        before = one.pool.submit(call(folder, "settled", "f.s.a", out=str(folder / "a")))
        assert before.result(timeout=30).ok
        assert one.pool.submit(call(folder, "unsettle", "f.s.b")).result(timeout=30).ok
        after = one.pool.submit(call(folder, "settled", "f.s.c", out=str(folder / "c")))
        assert after.result(timeout=30).ok
    finally:
        one.close()
    first, last = (folder / "a").read_text(), (folder / "c").read_text()
    assert first == last and "_end_everything" in first  # one worker, as it was


def test_what_the_server_imported_is_out_of_its_workers_collector(pool, folder):
    """A worker's garbage collections never walk what its fork server imported (nor
    write to those pages, shared with the server): frozen before the fork."""
    done = pool.pool.submit(call(folder, "frozen", "f.s.frozen", out=str(folder / "n")))
    assert done.result(timeout=30).ok
    assert int((folder / "n").read_text()) > 10_000  # Normandy's worker code, at least


def test_a_killed_worker_fails_its_task_with_its_signal_and_is_replaced(pool, folder):
    where = pool.pool.submit(call(folder, "where", "f.s.w")).result(timeout=15)
    running = pool.pool.submit(*nap(folder, 30, "f.s.long"))
    deadline = time.monotonic() + 10
    pid = None
    while pid is None and time.monotonic() < deadline:  # the worker that took it
        pid = next((w.pid for w in pool.pool._workers.values() if w.job is not None), None)
        time.sleep(0.02)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    error = running.exception(timeout=15)
    assert isinstance(error, WorkerCrashed) and error.exitcode == -signal.SIGKILL
    assert "SIGKILL" in str(error)
    assert where.ok
    again = [pool.pool.submit(*nap(folder, 0.2, f"f.s.a{i}")) for i in range(2)]
    assert all(f.result(timeout=15).ok for f in again)  # two workers again


def test_a_timeout_stops_the_task_and_kills_its_worker(pool, folder):
    began = time.monotonic()
    late = pool.pool.submit(*nap(folder, 30, "f.s.late", timeout=0.5))
    error = late.exception(timeout=15)
    assert isinstance(error, TaskTimedOut)
    assert time.monotonic() - began < 5
    assert pool.pool.submit(*nap(folder, 0.01)).result(timeout=15).ok


def test_a_cancelled_task_stops_its_worker(pool, folder):
    assert pool.pool.submit(*nap(folder, 0.01)).result(timeout=15).ok  # the workers are up
    running = pool.pool.submit(*nap(folder, 30, "f.s.long"))
    time.sleep(0.5)
    assert running.cancel()
    assert pool.pool.submit(*nap(folder, 0.01, "f.s.after")).result(timeout=15).ok
    busy = [w for w in pool.pool._workers.values() if w.job is not None]
    assert not busy


def test_no_worker_starts_before_there_is_work(folder):
    made = Pool(folder)
    try:
        time.sleep(0.3)
        assert not made.pool._workers
    finally:
        made.close()


def test_closing_waits_for_running_tasks_or_stops_them(folder):
    made = Pool(folder)
    futures = [made.pool.submit(*nap(folder, 0.3, f"f.s.n{i}")) for i in range(2)]
    made.pool.close()  # waits for them
    assert all(f.result(timeout=0).ok for f in futures)
    made.queue.close()

    made = Pool(folder)
    long = made.pool.submit(*nap(folder, 30, "f.s.long"))
    time.sleep(0.5)
    began = time.monotonic()
    made.pool.close(cancel=True)
    assert time.monotonic() - began < 5
    assert long.cancelled()
    made.queue.close()


def test_a_module_imported_by_the_server_is_there_in_later_workers(folder):
    (folder / "slow_import.py").write_text("import time\ntime.sleep(0.3)\nVALUE = 1\n")
    made = Pool(folder)
    try:
        imports = made.pool.prepare(["procs_pool", "slow_import"])
        result = made.pool.submit(call(folder, "where", "f.s.w")).result(timeout=30)
        assert imports.done.is_set()  # the worker was forked after the imports
        assert result.ok and result.import_duration == 0
        assert imports.report["imported"].keys() == {"procs_pool", "slow_import"}
    finally:
        made.close()


def test_an_import_past_the_budget_does_not_hold_the_workers(folder):
    (folder / "stuck_import.py").write_text("import time\ntime.sleep(60)\n")
    made = Pool(folder, budget=0.5)
    try:
        made.pool.prepare(["stuck_import"])
        began = time.monotonic()
        assert made.pool.submit(*nap(folder, 0.01)).result(timeout=30).ok
        assert time.monotonic() - began < 10
        assert any("could not preload stuck_import" in text for text, _ in made.lines)
    finally:
        made.close()


OWNER = """
import sys, time
sys.path.insert(0, {folder!r})
from tests.core.test_pool import Pool, nap
from pathlib import Path
made = Pool(Path({folder!r}))
futures = [made.pool.submit(*nap(Path({folder!r}), 300, f"f.s.n{{i}}")) for i in range(2)]
while sum(w.pid is not None and w.job is not None for w in made.pool._workers.values()) < 2:
    time.sleep(0.05)
pids = [w.pid for w in made.pool._workers.values()] + [s.pid for s in made.pool._servers]
print(" ".join(map(str, pids)), flush=True)
time.sleep(300)
"""


def test_the_workers_of_a_killed_owner_exit_within_seconds(folder):
    repo = Path(__file__).resolve().parents[2]
    script = textwrap.dedent(OWNER.format(folder=str(folder)))
    owner = subprocess.Popen(
        [sys.executable, "-c", script], cwd=repo, stdout=subprocess.PIPE, text=True
    )
    try:
        line = owner.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert len(pids) == 3, line
        owner.kill()
        owner.wait(10)
        deadline = time.monotonic() + 5
        alive = pids
        while alive and time.monotonic() < deadline:
            alive = [p for p in pids if _alive(p)]
            time.sleep(0.05)
        assert not alive, f"still running after their owner was killed: {alive}"
    finally:
        if owner.poll() is None:
            owner.kill()
        owner.wait()
        owner.stdout.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def test_a_fork_server_started_ahead_is_adopted_by_the_run_s_executor(folder):
    """``normandy run`` starts the fork server before it reads the project: the executor
    forks its workers from that one (no second server), and gives them the run's import
    path as it is then (the project's folders added meanwhile)."""
    from normandy_core.executors import WorkerSetup
    from normandy_core.executors.local import LocalExecutor, start_fork_server

    ahead = start_fork_server()
    sys.path.insert(0, str(folder))  # as the project's folders are, while it is read
    queue = PacketQueue()
    executor = LocalExecutor(1, WorkerSetup(queue, (str(folder),), head_start=ahead))
    try:
        executor.warm_up()
        assert ahead.adopted
        out = folder / "origin.txt"
        result = executor.submit(call(folder, "origin", out=str(out))).result(timeout=30)
        assert result.ok, result.traceback
        parent, python_path = out.read_text().split(" ", 1)
        assert int(parent) == ahead.pid  # forked from the server started ahead
        assert python_path.split(os.pathsep)[0] == str(folder)
    finally:
        sys.path.remove(str(folder))
        executor.shutdown(cancel=True)
        queue.close()
    assert ahead._proc is not None and ahead._proc.poll() is not None  # closed with the run


def test_a_fork_server_started_ahead_and_not_adopted_is_its_starter_s_to_close():
    from normandy_core.executors.local import start_fork_server

    ahead = start_fork_server()
    assert not ahead.adopted and ahead.alive
    ahead.close()
    assert ahead._proc is not None and ahead._proc.returncode is not None
