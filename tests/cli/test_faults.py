"""Fault injection for ``normandy run`` (SPEC 7): crashed workers, timeouts, retries,
Ctrl-C and SIGTERM, with real processes and real signals (no mocks).

Processes live in a project-local plugin module ``procs.py`` and write what they did to
``<project>/out`` (found from ``procs.py``: a Dask worker does not have the command's
environment); ``watcher.py``, in the orchestrator, records every
``normandy_on_process_error`` call in the folder named by ``NORMANDY_TEST_OUT`` (the same).
Crashes and timeouts are tested under ``local`` and ``dask``, not ``serial``: there a
crashing task would take the orchestrator down with it, and a timeout cannot be enforced.
Under ``dask`` the real Dask worker processes are killed too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from tests.conftest import normandy_command

EXECUTORS = ["local", "serial", "dask"]
"""Every built-in executor (dask: on the module's cluster, see conftest)."""

PROCS = """
import os
import signal
import time
from pathlib import Path

from normandy_core import hookimpl


def _out(name):
    folder = Path(__file__).resolve().parent / "out"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def _count(name):
    counter = _out(name)
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    return n


def sleeper(pipe, params):
    start = time.time()
    _out(f"started-{params['which']}").write_text(str(start))
    time.sleep(params.get("sleep", 0.5))
    _out(f"slept-{params['which']}").write_text(
        f"{os.getpid()} {start} {time.time()}")


def crash(params):
    _out("crash-pid").write_text(str(os.getpid()))
    deadline = time.time() + 10
    while not list(_out("").glob("started-*")) and time.time() < deadline:
        time.sleep(0.01)  # crash while another task of the step is running
    _out("crash-time").write_text(str(time.time()))
    if params["how"] == "exit":
        os._exit(3)
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)


def crash_once(pipe):
    n = _count("crash_once-count")
    if n == 1:
        os._exit(3)
    pipe.vars["crash_once_attempt"] = n


def hang(params):
    _out("hang-pid").write_text(str(os.getpid()))
    _out("started-hang").write_text(str(time.time()))
    time.sleep(params.get("sleep", 30))
    _out("hang-finished").write_text("the timeout did not stop me")


def flaky(pipe):
    n = _count("flaky-count")
    with open(_out("flaky-times"), "a") as times:
        times.write(f"{time.time()}\\n")
    if n < 3:
        raise RuntimeError(f"attempt {n} fails")


def pid_sleep(params):
    _out(f"pid-{params['which']}").write_text(str(os.getpid()))
    time.sleep(60)
    _out(f"woke-{params['which']}").write_text("not interrupted")


def mark(pipe):
    _out(f"mark-{pipe.flow}.{pipe.step}.{pipe.task}").write_text(str(os.getpid()))


def chatter(log):
    # logs without pause, long lines (several pipe packets each), until it is stopped
    n = 0
    while True:
        n += 1
        log.info("line %d %s", n, "x" * 6000)


def late_talker(log):
    time.sleep(1.5)  # after chatter was killed, in all likelihood in the middle of a line
    for i in range(5):
        log.info("late line %d", i)


def own_interrupt(params):
    _count("own_interrupt-count")
    if params["how"] == "keyboard":
        raise KeyboardInterrupt("stop, says the process")
    raise SystemExit("exit, says the process")


def keeper(pipe):
    time.sleep(0.5)  # still running as its sibling fails
    pipe.vars["kept"] = os.getpid()


def deaf():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@hookimpl
def normandy_processes():
    names = ["sleeper", "crash", "crash_once", "hang", "flaky", "pid_sleep", "mark",
             "chatter", "late_talker", "own_interrupt", "keeper", "deaf"]
    return {name: f"procs:{name}" for name in names}
"""

WATCHER = """
import os
from pathlib import Path

from normandy_core import hookimpl


@hookimpl
def normandy_on_process_error(task, error):
    folder = Path(os.environ["NORMANDY_TEST_OUT"])
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "errors.txt", "a") as out:
        out.write(f"{task.key}|{error.kind}\\n")
"""

HEAD = """
confs:
  plugins: [procs, watcher]
  envs: {dev: {}}
flows:
"""


# -- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture
def project(make_project) -> Callable[[str], Path]:
    """``project(flows_yaml)``: a project with ``procs.py`` and ``watcher.py``."""

    def make(flows: str) -> Path:
        return make_project(HEAD + flows, {"procs.py": PROCS, "watcher.py": WATCHER})

    return make


@pytest.fixture
def run(normandy, executor_args):
    """``run(root, executor, *args)``: ``normandy run --executor X --workers 2 --json *args``
    (``dask``: on the module's cluster)."""

    def call(root: Path, executor: str = "local", *args: str):
        return normandy(
            "run",
            *executor_args(executor),
            "--workers",
            "2",
            "--json",
            *args,
            cwd=root,
            env={"NORMANDY_TEST_OUT": str(root / "out")},
            timeout=60,
        )

    return call


CRASHING = ["local", "dask"]
"""The executors that run tasks in processes they can lose and replace."""


def summary(result) -> dict:
    return json.loads(result.stdout)


def tasks_by_name(data: dict) -> dict[str, dict]:
    return {f"{t['flow']}.{t['step']}.{t['task']}": t for t in data["tasks"]}


def out_file(root: Path, name: str) -> Path:
    return root / "out" / name


def errors_seen(root: Path) -> list[tuple[str, str]]:
    """What ``normandy_on_process_error`` received: (task key, error kind) per call."""
    path = out_file(root, "errors.txt")
    if not path.exists():
        return []
    return [tuple(line.split("|", 1)) for line in path.read_text().splitlines()]


def _proc_status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return fields


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process. A zombie (dead, not yet reaped by whichever
    ancestor inherited it: the init of a container may never reap) does not count."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _proc_status(pid).get("State", "").startswith(("Z", "X"))


def wait_until_gone(pids: Iterable[int], within: float) -> set[int]:
    """The pids still alive after ``within`` seconds (returns as soon as none is)."""
    pending = set(pids)
    deadline = time.monotonic() + within
    while True:
        pending = {pid for pid in pending if alive(pid)}
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.05)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, from the PPid lines of /proc/*/status."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            ppid = _proc_status(int(entry.name)).get("PPid")
            if ppid is not None:
                parents[int(entry.name)] = int(ppid)
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return {p for p in found if alive(p)}


def run_log(root: Path, data: dict) -> str:
    return (root / "logs" / data["run_id"] / "run.log").read_text()


# -- crashed workers ------------------------------------------------------------------------

CRASH = """
  f:
    tags: [default]
    steps:
      s:
        crash: {params: {how: HOW}TOLERANCE}
        sleeper:
          iter_param: {name: which, values: [a, b]}
      after: [mark]
"""

CRASH_MESSAGES = {
    "exit": ("exited with code 3",),
    "kill": ("SIGKILL", "out of memory"),
}


@pytest.mark.parametrize("executor", CRASHING)
@pytest.mark.parametrize("how", ["exit", "kill"])
def test_a_crashed_worker_fails_only_its_own_task(project, run, how, executor):
    root = project(CRASH.replace("HOW", how).replace("TOLERANCE", ""))
    result = run(root, executor)
    assert result.returncode == 1, result.output
    tasks = tasks_by_name(summary(result))
    crashed = tasks["f.s.crash"]
    assert crashed["status"] == "crashed", crashed
    assert crashed["tolerated"] is False
    assert crashed["attempts"] == 1
    assert crashed["error"]["kind"] == "crashed"
    for text in CRASH_MESSAGES[how]:
        assert text in crashed["error"]["message"], crashed
        assert text in result.stderr
    assert crashed["pid"] == int(out_file(root, "crash-pid").read_text())
    # the other tasks of the step ran to their end, one of them in flight during the crash
    crashed_at = float(out_file(root, "crash-time").read_text())
    spans = []
    for which in "ab":
        assert tasks[f"f.s.sleeper[{which}]"]["status"] == "succeeded"
        _, start, end = out_file(root, f"slept-{which}").read_text().split()
        spans.append((float(start), float(end)))
    assert any(start < crashed_at < end for start, end in spans), (crashed_at, spans)
    # an untolerated crash ends the flow
    assert tasks["f.after.mark"]["status"] == "not started"
    assert not out_file(root, "mark-f.after.mark").exists()
    assert errors_seen(root) == [("f.s.crash", "crashed")]


@pytest.mark.parametrize("executor", CRASHING)
@pytest.mark.parametrize("how", ["exit", "kill"])
def test_the_pool_replaces_a_crashed_worker(project, run, how, executor):
    root = project(CRASH.replace("HOW", how).replace("TOLERANCE", ", error_tolerance: true"))
    result = run(root, executor)
    assert result.returncode == 0, result.output
    data = summary(result)
    assert data["status"] == "succeeded"
    tasks = tasks_by_name(data)
    crashed = tasks["f.s.crash"]
    assert (crashed["status"], crashed["tolerated"]) == ("crashed", True)
    for text in CRASH_MESSAGES[how]:
        assert text in crashed["error"]["message"], crashed
    assert "failed (tolerated)" in result.stderr
    for which in "ab":
        assert tasks[f"f.s.sleeper[{which}]"]["status"] == "succeeded"
        assert out_file(root, f"slept-{which}").exists()
    # the later step still runs on the pool, in a live worker (not the dead one)
    assert tasks["f.after.mark"]["status"] == "succeeded"
    mark_pid = int(out_file(root, "mark-f.after.mark").read_text())
    assert mark_pid != int(out_file(root, "crash-pid").read_text())
    assert mark_pid != os.getpid()  # in a worker, not the test process


@pytest.mark.parametrize("executor", CRASHING)
def test_retries_apply_to_crashes(project, run, executor):
    root = project(
        """
  f:
    tags: [default]
    steps:
      s:
        crash_once: {retries: 1}
        sleeper: {params: {which: a}}
"""
    )
    result = run(root, executor)
    assert result.returncode == 0, result.output
    tasks = tasks_by_name(summary(result))
    assert tasks["f.s.crash_once"]["status"] == "succeeded"
    assert tasks["f.s.crash_once"]["attempts"] == 2
    assert tasks["f.s.crash_once"]["error"] is None
    assert tasks["f.s.sleeper"]["status"] == "succeeded"
    assert out_file(root, "crash_once-count").read_text() == "2"
    assert errors_seen(root) == [("f.s.crash_once", "crashed")]
    assert "attempt 1 failed (crashed)" in run_log(root, summary(result))


# -- timeouts -------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", CRASHING)
def test_a_task_past_its_timeout_is_stopped_and_its_worker_killed(project, run, executor):
    root = project(
        """
  f:
    tags: [default]
    steps:
      s:
        hang: {timeout: 1}
        sleeper: {params: {which: a, sleep: 0.5}}
      after: [mark]
"""
    )
    started = time.monotonic()
    result = run(root, executor)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.output
    assert elapsed < 15, f"the run took {elapsed:.1f} s: the 30 s task was not stopped"
    tasks = tasks_by_name(summary(result))
    hung = tasks["f.s.hang"]
    assert hung["status"] == "timed out", hung
    assert hung["error"]["kind"] == "timed out"
    assert "timeout of 1 s" in hung["error"]["message"]
    assert "timed out" in result.stderr
    assert tasks["f.s.sleeper"]["status"] == "succeeded"
    assert out_file(root, "slept-a").exists()
    assert tasks["f.after.mark"]["status"] == "not started"
    pid = int(out_file(root, "hang-pid").read_text())
    assert not wait_until_gone([pid], within=2.0), f"worker {pid} still alive after its timeout"
    assert not out_file(root, "hang-finished").exists()
    assert errors_seen(root) == [("f.s.hang", "timed out")]


@pytest.mark.parametrize("executor", CRASHING)
def test_a_worker_killed_while_it_logs_blocks_no_other_logging(project, run, executor):
    """A worker killed in the middle of writing a log record once kept the log queue's
    lock: every later record, the orchestrator's too, waited for it forever."""
    root = project(
        """
  f:
    tags: [default]
    steps:
      s:
        chatter: {timeout: 0.5}
        late_talker:
      after: [mark]
"""
    )
    result = run(root, executor)
    assert result.returncode == 1, result.output
    tasks = tasks_by_name(summary(result))
    assert tasks["f.s.chatter"]["status"] == "timed out"
    assert tasks["f.s.late_talker"]["status"] == "succeeded"
    [log_dir] = (root / "logs").iterdir()
    late = (log_dir / "process-f.s.late_talker.log").read_text()
    assert [f"late line {i}" in late for i in range(5)] == [True] * 5
    assert "f.s.late_talker | late line 4" in (log_dir / "run.log").read_text()


@pytest.mark.parametrize("executor", CRASHING)
def test_on_process_error_is_called_for_crashes_and_timeouts(project, run, executor):
    root = project(
        """
  f:
    tags: [default]
    steps:
      s:
        crash: {params: {how: exit}, error_tolerance: true}
        hang: {timeout: 1, error_tolerance: true}
      after: [mark]
"""
    )
    result = run(root, executor)
    assert result.returncode == 0, result.output
    assert sorted(errors_seen(root)) == [("f.s.crash", "crashed"), ("f.s.hang", "timed out")]
    tasks = tasks_by_name(summary(result))
    assert tasks["f.s.crash"]["status"] == "crashed"
    assert tasks["f.s.hang"]["status"] == "timed out"
    assert tasks["f.after.mark"]["status"] == "succeeded"


# -- a process's own KeyboardInterrupt or SystemExit ---------------------------------------

OWN_INTERRUPT = """
  f:
    tags: [default]
    steps:
      s:
        own_interrupt: {params: {how: HOW}, retries: 1, retry_delay: 0.1TOLERANCE}
        keeper:
      after: [mark]
"""


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("how, error", [("keyboard", "KeyboardInterrupt"), ("exit", "SystemExit")])
def test_a_process_s_own_interrupt_or_exit_fails_that_task_alone(
    project, run, normandy, executor, how, error
):
    """Only a real signal to normandy interrupts a run: a process that raised
    KeyboardInterrupt once ended the run (exit 130, its error lost, its sibling's success
    and variables discarded; under dask, "crashed: the scheduler lost it")."""
    root = project(OWN_INTERRUPT.replace("HOW", how).replace("TOLERANCE", ""))
    result = run(root, executor)
    assert result.returncode == 1, result.output
    data = summary(result)
    assert data["status"] == "failed"
    tasks = tasks_by_name(data)
    failed = tasks["f.s.own_interrupt"]
    assert (failed["status"], failed["attempts"]) == ("failed", 2), failed  # retries apply
    assert failed["error"]["kind"] == "failed"
    assert failed["error"]["type"] == error
    said = "stop" if how == "keyboard" else "exit"
    assert failed["error"]["message"] == f"{said}, says the process"
    assert f"raise {error}(" in result.stderr  # with its traceback
    assert out_file(root, "own_interrupt-count").read_text() == "2"
    assert errors_seen(root) == [("f.s.own_interrupt", "failed")] * 2
    # its sibling succeeded, and its variable was kept
    assert tasks["f.s.keeper"]["status"] == "succeeded"
    shown = json.loads(normandy("runs", data["run_id"], "--json", cwd=root).stdout)
    variables = {t["key"]: t["variables"] for t in shown["tasks"]}
    assert variables["f.s.keeper"] == ["kept"]
    assert tasks["f.after.mark"]["status"] == "not started"
    assert "interrupted" not in result.stderr


def test_error_tolerance_applies_to_a_process_s_own_interrupt(project, run):
    tolerant = OWN_INTERRUPT.replace("TOLERANCE", ", error_tolerance: true")
    result = run(project(tolerant.replace("HOW", "keyboard")), "local")
    assert result.returncode == 0, result.output
    tasks = tasks_by_name(summary(result))
    own = tasks["f.s.own_interrupt"]
    assert (own["status"], own["tolerated"], own["attempts"]) == ("failed", True, 2)
    assert tasks["f.after.mark"]["status"] == "succeeded"


ODD_ENGINE = '''
from concurrent.futures import Future

from normandy_core import hookimpl
from normandy_core.executors.serial import SerialExecutor


class Odd(SerialExecutor):
    """Serial, but the future of the task ``mark`` ends with an exception no executor
    should give: a KeyboardInterrupt."""

    def submit(self, call, timeout=None):
        if call.process != "mark":
            return super().submit(call, timeout)
        future = Future()
        future.set_exception(KeyboardInterrupt("from a future"))
        return future


@hookimpl
def normandy_executors():
    return {"odd": Odd}
'''


def test_an_unexpected_exception_from_a_future_is_that_task_s_failure(make_project, normandy):
    """The orchestrator took any KeyboardInterrupt for Ctrl-C, one from a future included."""
    flows = """
  f:
    tags: [default]
    steps:
      s: [mark, keeper]
"""
    root = make_project(
        HEAD.replace("[procs, watcher]", "[procs, watcher, odd]") + flows,
        {"procs.py": PROCS, "watcher.py": WATCHER, "odd.py": ODD_ENGINE},
    )
    out = {"NORMANDY_TEST_OUT": str(root / "out")}
    result = normandy("run", "--executor", "odd", "--json", cwd=root, env=out)
    assert result.returncode == 1, result.output
    data = summary(result)
    assert data["status"] == "failed"
    tasks = tasks_by_name(data)
    assert tasks["f.s.mark"]["status"] == "failed"
    assert tasks["f.s.mark"]["error"]["type"] == "KeyboardInterrupt"
    assert "the executor could not run it: KeyboardInterrupt: from a future" in result.stderr
    assert tasks["f.s.keeper"]["status"] == "succeeded"


# -- retries and retry_delay (both executors) ----------------------------------------------------

FLAKY = """
  f:
    tags: [default]
    steps:
      s:
        flaky: {retries: RETRIES, retry_delay: 0.5}
"""


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_flaky_task_succeeds_on_its_third_attempt(project, run, executor):
    root = project(FLAKY.replace("RETRIES", "2"))
    result = run(root, executor)
    assert result.returncode == 0, result.output
    data = summary(result)
    task = tasks_by_name(data)["f.s.flaky"]
    assert task["status"] == "succeeded"
    assert task["attempts"] == 3
    assert task["error"] is None
    log = run_log(root, data)
    assert "attempt 1 failed" in log
    assert "attempt 2 failed" in log
    assert "attempt 3 failed" not in log
    times = [float(t) for t in out_file(root, "flaky-times").read_text().split()]
    assert len(times) == 3
    for before, after in zip(times, times[1:]):
        assert after - before >= 0.8 * 0.5, times
    assert [kind for _, kind in errors_seen(root)] == ["failed", "failed"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_flaky_task_fails_when_its_retries_run_out(project, run, executor):
    root = project(FLAKY.replace("RETRIES", "1"))
    result = run(root, executor)
    assert result.returncode == 1, result.output
    data = summary(result)
    assert data["status"] == "failed"
    task = tasks_by_name(data)["f.s.flaky"]
    assert task["status"] == "failed"
    assert task["attempts"] == 2
    assert task["error"]["message"] == "attempt 2 fails"
    assert "attempt 1 failed" in run_log(root, data)
    assert "RuntimeError: attempt 2 fails" in result.stderr
    assert out_file(root, "flaky-count").read_text() == "2"


# -- Ctrl-C and SIGTERM ---------------------------------------------------------------------

SLEEPING = """
  f:
    tags: [default]
    steps:
      s:
        pid_sleep:
          iter_param: {name: which, values: [a, b]}
      after: [mark]
"""

# a plugin whose normandy_after_run takes a while (say, it sends a notification)
SLOW_AFTER_RUN = """
import time

from normandy_core import hookimpl


@hookimpl
def normandy_after_run(run, summary):
    time.sleep(0.5)
"""


def _start(root: Path, *args: str) -> subprocess.Popen:
    """``normandy run --workers 2 --json *args`` in its own session: a signal goes only
    where it is sent."""
    return subprocess.Popen(
        [*normandy_command(), "run", "--workers", "2", "--json", *args],
        cwd=root,
        env={
            **os.environ,
            "NO_COLOR": "1",
            "COLUMNS": "200",
            "NORMANDY_TEST_OUT": str(root / "out"),
        },
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_workers(proc: subprocess.Popen, root: Path) -> list[int]:
    """The pids of the two sleeping tasks, once both have started."""
    pid_files = [out_file(root, "pid-a"), out_file(root, "pid-b")]
    _wait_for_files(proc, pid_files)
    return [int(p.read_text()) for p in pid_files]


def _wait_for_files(proc: subprocess.Popen, files: list[Path]) -> None:
    """Until every file is written (within 30 s, while the run goes on)."""
    deadline = time.monotonic() + 30
    while not all(p.exists() and p.read_text() for p in files):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, stderr = proc.communicate(timeout=10)
            pytest.fail(f"the tasks never started (exit {proc.returncode}):\n{stderr}")
        time.sleep(0.05)


def _kill_everything(proc: subprocess.Popen, below: Iterable[int]) -> None:
    """Clean up after a failed test: nothing of ours may outlive it."""
    for pid in {*below, *descendants(proc.pid)}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.kill()
    proc.communicate()


def _interrupt(
    root: Path, signals: list[tuple[float, int]], *args: str
) -> tuple[subprocess.Popen, str, str, list[int], set[int]]:
    """Start the run of two tasks sleeping 60 s, wait until both run, send each signal
    (after its delay) to the orchestrator only; return the process, its output, the
    workers' pids and every process that was below the orchestrator."""
    proc = _start(root, *args)
    below: set[int] = set()
    try:
        workers = _wait_for_workers(proc, root)
        below = descendants(proc.pid)
        assert set(workers) <= below, (workers, below)
        for delay, signum in signals:
            time.sleep(delay)
            proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=15)
    except BaseException:
        _kill_everything(proc, below)
        raise
    return proc, stdout, stderr, workers, below


def _check_interrupted(root: Path, proc, stdout: str, stderr: str, workers, below) -> None:
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    data = json.loads(stdout)
    assert data["status"] == "interrupted"
    tasks = tasks_by_name(data)
    for which in "ab":
        assert tasks[f"f.s.pid_sleep[{which}]"]["status"] == "interrupted", tasks
        assert tasks[f"f.s.pid_sleep[{which}]"]["attempts"] == 1
    assert tasks["f.after.mark"]["status"] == "not started"
    assert f"run {data['run_id']} interrupted" in run_log(root, data)
    left = wait_until_gone(workers, within=5.0)
    assert not left, f"workers still alive after the run: {left}"
    left = wait_until_gone(below, within=5.0)
    assert not left, f"processes of the orchestrator still alive: {left}"
    for which in "ab":
        assert not out_file(root, f"woke-{which}").exists()
    assert not out_file(root, "mark-f.after.mark").exists()


@pytest.mark.parametrize("executor", CRASHING)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_and_its_workers(project, signum, executor):
    """Under ``dask``, on the cluster the run starts for itself (below the orchestrator):
    its Dask workers, their fork servers and the tasks' processes all go."""
    root = project(SLEEPING)
    proc, stdout, stderr, workers, below = _interrupt(root, [(0.0, signum)], "--executor", executor)
    _check_interrupted(root, proc, stdout, stderr, workers, below)
    assert "Traceback" not in stderr


# where a signal lands, its exception can be lost: in a plugin's hook that swallows
# whatever interrupts it (a notifier's ``except BaseException`` around a slow call), in a
# garbage collector's callback (Dask installs one: there the loss was seen), a ``__del__``
SWALLOWING = """
import gc
import os
import time
from pathlib import Path

from normandy_core import hookimpl

armed = False


def _slow():
    out = Path(os.environ["NORMANDY_TEST_OUT"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "swallowing").write_text("1")
    time.sleep(30)


def _collecting(phase, info):
    global armed
    if armed and phase == "start":
        armed = False
        _slow()


gc.callbacks.append(_collecting)


@hookimpl
def normandy_before_process(task):
    global armed
    if task.params.get("which") != "b":
        return
    if os.environ["HOW"] == "gc":
        armed = True
        gc.collect()
        return
    try:
        _slow()
    except BaseException:
        pass
"""


@pytest.mark.parametrize("how", ["except", "gc"])
def test_a_signal_whose_exception_is_lost_still_stops_the_run(make_project, monkeypatch, how):
    """The signal lands in a plugin's hook that swallows the exception, or in a garbage
    collector's callback, where Python loses it: the run stops all the same, at its next
    wait, instead of waiting for its tasks to end; no report of the lost exception."""
    monkeypatch.setenv("HOW", how)
    root = make_project(
        HEAD.replace("[procs, watcher]", "[procs, watcher, swallowing]") + SLEEPING,
        {"procs.py": PROCS, "watcher.py": WATCHER, "swallowing.py": SWALLOWING},
    )
    proc = _start(root)
    try:
        _wait_for_files(proc, [out_file(root, "pid-a"), out_file(root, "swallowing")])
        below = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=15)
    except BaseException:
        _kill_everything(proc, ())
        raise
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    data = json.loads(stdout)
    assert data["status"] == "interrupted"
    assert tasks_by_name(data)["f.s.pid_sleep[a]"]["status"] == "interrupted"
    assert tasks_by_name(data)["f.after.mark"]["status"] == "not started"
    assert not wait_until_gone(below, within=5.0)
    assert not out_file(root, "woke-a").exists()


def test_a_task_that_ignores_sigterm_does_not_make_serial_deaf_to_it(project):
    """Under serial a process runs in normandy itself: one that ignored SIGTERM took the
    orchestrator's handler away, and a later SIGTERM no longer stopped the run."""
    root = project(SLEEPING.replace("      s:\n", "      first: [deaf]\n      s:\n", 1))
    proc = _start(root, "--executor", "serial")
    try:
        _wait_for_files(proc, [out_file(root, "pid-a")])
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    except BaseException:
        _kill_everything(proc, ())
        raise
    assert proc.returncode == 130, stderr
    data = json.loads(stdout)
    assert data["status"] == "interrupted"
    assert tasks_by_name(data)["f.first.deaf"]["status"] == "succeeded"
    assert not out_file(root, "woke-a").exists()


def test_a_second_ctrl_c_while_the_run_is_recorded_is_ignored(make_project):
    """The second Ctrl-C, 0.1 s after the first, lands while the run is being recorded
    (a plugin's normandy_after_run takes 0.5 s): the record is completed all the same."""
    root = make_project(
        HEAD.replace("[procs, watcher]", "[procs, watcher, slow]") + SLEEPING,
        {"procs.py": PROCS, "watcher.py": WATCHER, "slow.py": SLOW_AFTER_RUN},
    )
    proc, stdout, stderr, workers, below = _interrupt(
        root, [(0.0, signal.SIGINT), (0.1, signal.SIGINT)]
    )
    _check_interrupted(root, proc, stdout, stderr, workers, below)
    assert "Traceback" not in stderr
    assert "STATUS" in stderr  # the summary table was printed
    assert "interrupted; logs in" in stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_second_signal_while_the_summary_is_printed(make_project, signum):
    """The window after the run is recorded, while the CLI writes the summary, made wide
    enough to hit every time: a plan of 1200 more tasks makes the --json summary larger than
    a pipe holds, and stdout is not read until the second signal has been sent."""
    many = ", ".join(f"v{i}" for i in range(1200))
    later = f"after:\n        mark:\n          iter_param: {{name: n, values: [{many}]}}"
    flows = SLEEPING.replace("after: [mark]", later)
    root = make_project(HEAD + flows, {"procs.py": PROCS, "watcher.py": WATCHER})
    proc = _start(root)
    below: set[int] = set()
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        _wait_for_workers(proc, root)
        below = descendants(proc.pid)
        proc.send_signal(signum)
        deadline = time.monotonic() + 15
        while not any("interrupted; logs in" in line for line in errors):
            assert time.monotonic() < deadline, "".join(errors)
            time.sleep(0.05)
        time.sleep(0.5)  # the summary fills the pipe: the command waits, writing it
        proc.send_signal(signum)
        stdout = proc.stdout.read()
        proc.wait(timeout=15)
        reader.join(timeout=5)
    except BaseException:
        _kill_everything(proc, below)
        raise
    assert proc.returncode == 130, "".join(errors[-3:])
    data = json.loads(stdout)  # complete
    assert data["status"] == "interrupted"
    assert len(data["tasks"]) == 1202
