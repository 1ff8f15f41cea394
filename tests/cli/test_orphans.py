"""No process outlives its run (SPEC 11, 17): what a task starts ends when the task ends,
times out, crashes or is interrupted; a daemon it starts in a session of its own ends with
the run; the workers of a ``normandy`` killed with SIGKILL exit, with the fork server; a
task's ``os.chdir`` stays in the task. Real processes and real signals: the tasks start
``sleep 300`` and note its pid in ``<project>/out`` (found from ``procs.py``: a Dask
worker has not the command's environment), and the tests look for it in ``/proc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.test_faults import descendants, wait_until_gone
from tests.conftest import normandy_command

EXECUTORS = ["local", "serial", "dask"]
STOPPING = ["local", "dask"]
"""The executors that stop a task in the middle (at its timeout, when its worker dies)."""

PROCS = """
import os
import signal
import subprocess
import time
from pathlib import Path

from normandy_core import hookimpl

OUT = Path(__file__).resolve().parent / "out"


def _note(name, value):
    OUT.mkdir(exist_ok=True)
    part = OUT / f"{name}.part"
    part.write_text(str(value))
    part.replace(OUT / name)  # whole, or not there


def spawn(pipe, params):
    how = params.get("how", "child")
    if how == "child":
        pid = subprocess.Popen(["sleep", "300"]).pid
    elif how == "orphan":  # through a shell that exits at once: the sleep is orphaned
        shell = ["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"]
        pid = int(subprocess.run(shell, capture_output=True, text=True, check=True).stdout)
    elif how == "daemon":  # as the docs say to start one: in a session of its own
        pid = subprocess.Popen(
            ["sleep", "300"], start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ).pid
    else:  # a daemon the classic way: fork, setsid, fork again, the first child exits
        read, write = os.pipe()
        first = os.fork()
        if first == 0:
            os.setsid()
            if os.fork() == 0:  # the grandchild: a copy of this process, in a new session
                os.write(write, str(os.getpid()).encode())
                time.sleep(300)
                os._exit(0)
            os._exit(0)
        os.close(write)
        pid = int(os.read(read, 64))
        os.waitpid(first, 0)
        time.sleep(params.get("linger", 0))
    _note(f"child-{pipe.task}", pid)
    then = params.get("then")
    if then == "hang":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # not even its worker's handler runs
        _note(f"hanging-{pipe.task}", os.getpid())
        time.sleep(300)
        _note(f"woke-{pipe.task}", "not stopped")
    elif then == "crash":
        os.kill(os.getpid(), signal.SIGKILL)


def check(params):
    pid = int((OUT / f"child-{params['of']}").read_text())
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        state = "gone"
    _note(f"seen-{params['of']}", "alive" if state not in ("gone", "Z", "X") else "dead")


def chatter(log):
    _note("chatter", os.getpid())
    while True:  # blocks in a pipe write once nobody reads the log queue
        log.info("line %s", "x" * 6000)


def move(pipe, params):
    _note(f"before-{pipe.task}", f"{os.getpid()} {os.getcwd()}")
    time.sleep(0.5)  # the other worker takes the other task
    os.chdir("/")


def where(pipe, params):
    time.sleep(0.2)
    _note(f"where-{pipe.task}", f"{os.getpid()} {os.getcwd()}")


@hookimpl
def normandy_processes():
    return {name: f"procs:{name}" for name in ["spawn", "check", "chatter", "move", "where"]}
"""

HEAD = """
confs:
  plugins: [procs]
  envs: {dev: {}}
flows:
"""


@pytest.fixture
def project(make_project) -> Callable[[str], Path]:
    def make(flows: str) -> Path:
        return make_project(HEAD + flows, {"procs.py": PROCS})

    return make


def out(root: Path, name: str) -> Path:
    return root / "out" / name


def noted_pid(root: Path, name: str) -> int:
    return int(out(root, name).read_text())


def kill_quietly(*pids: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def start(root: Path, *args: str, **popen: object) -> subprocess.Popen:
    """``normandy run --workers 2 --json *args`` in a session of its own."""
    options: dict[str, object] = {
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        **popen,
    }
    return subprocess.Popen(
        [*normandy_command(), "run", "--workers", "2", "--json", *args],
        cwd=root,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        **options,  # type: ignore[call-overload]
    )


def wait_for(proc: subprocess.Popen, *files: Path, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not all(f.exists() for f in files):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, stderr = proc.communicate(timeout=30)
            pytest.fail(f"the tasks never started (exit {proc.returncode}):\n{stderr}")
        time.sleep(0.05)


# -- when a task ends -----------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("how", ["child", "orphan"])
def test_what_a_task_started_ends_with_it(project, executor_args, executor, how):
    """A task that started ``sleep 300`` and returned made ``normandy run | cat`` wait for
    the sleep (it held the command's stdout), and left it running."""
    root = project(
        f"""
  f:
    tags: [default]
    steps:
      s:
        spawn: {{params: {{how: {how}}}}}
      after:
        check: {{params: {{of: spawn}}}}
"""
    )
    proc = start(root, *executor_args(executor))
    try:
        stdout, stderr = proc.communicate(timeout=90)  # not 300 s: nothing holds its output
    finally:
        if proc.poll() is None:
            kill_quietly(proc.pid)
        with contextlib.suppress(FileNotFoundError, ValueError):
            kill_quietly(noted_pid(root, "child-spawn"))
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["status"] == "succeeded"
    # gone when the task ended, before the next step began
    assert out(root, "seen-spawn").read_text() == "dead"


@pytest.mark.parametrize("executor", ["local", "serial"])
@pytest.mark.parametrize("how", ["daemon", "doublefork"])
def test_a_daemon_in_a_session_of_its_own_outlives_its_task_not_the_run(
    project, executor, how
):
    """Issue 22: a task's grandchild that double-forked into a new session (``setsid``)
    was left alive under init, with a fork server and the resource tracker holding the
    command's stdout (``normandy run | cat`` waited); under serial the survivor was a copy
    of normandy holding ``history.sqlite``. A daemon may serve the later steps of its run
    (the next step sees it), and ends with the run, nothing holding the output open."""
    root = project(
        f"""
  f:
    tags: [default]
    steps:
      s:
        spawn: {{params: {{how: {how}, linger: 0.2}}}}
      after:
        check: {{params: {{of: spawn}}}}
"""
    )
    proc = start(root, "--executor", executor)
    try:
        began = time.monotonic()
        stdout, stderr = proc.communicate(timeout=90)  # EOF: nothing holds its output
        assert time.monotonic() - began < 60
        assert proc.returncode == 0, stderr
        assert out(root, "seen-spawn").read_text() == "alive"  # it served the next step
        daemon = noted_pid(root, "child-spawn")
        assert not wait_until_gone([daemon], within=5), "the daemon outlived the run"
        holders = _holding(root / ".normandy" / "history.sqlite")
        assert not holders, f"processes still holding the history: {holders}"
    finally:
        with contextlib.suppress(FileNotFoundError, ValueError):
            kill_quietly(noted_pid(root, "child-spawn"))


def _holding(path: Path) -> list[int]:
    """The processes that have ``path`` open."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{entry}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry}/fd/{fd}") == str(path):
                        found.append(int(entry))
    return found


# -- when a task is stopped -----------------------------------------------------------------


@pytest.mark.parametrize("executor", STOPPING)
@pytest.mark.parametrize("then, status", [("hang", "timed out"), ("crash", "crashed")])
def test_a_stopped_task_s_processes_are_killed(
    project, normandy, executor_args, executor, then, status
):
    """The task ignores SIGTERM (its worker's handler that killed the group never runs):
    its child survived the timeout in two runs out of three; a crash left it always."""
    root = project(
        f"""
  f:
    tags: [default]
    steps:
      s:
        spawn: {{params: {{how: orphan, then: {then}}}, timeout: 2}}
"""
    )
    try:
        result = normandy("run", *executor_args(executor), "--json", cwd=root, timeout=120)
        assert result.returncode == 1, result.output
        [task] = json.loads(result.stdout)["tasks"]
        assert task["status"] == status, task
        child = noted_pid(root, "child-spawn")
        left = wait_until_gone([child], within=10)
        assert not left, f"the task's child {child} outlived it ({status})"
        assert not out(root, "woke-spawn").exists()
    finally:
        with contextlib.suppress(FileNotFoundError, ValueError):
            kill_quietly(noted_pid(root, "child-spawn"))


@pytest.mark.parametrize("executor", EXECUTORS)
def test_an_interrupted_task_s_processes_are_killed(project, executor_args, executor):
    root = project(
        """
  f:
    tags: [default]
    steps:
      s:
        spawn: {params: {how: orphan, then: hang}}
"""
    )
    proc = start(root, *executor_args(executor))
    child = None
    try:
        wait_for(proc, out(root, "hanging-spawn"))
        child = noted_pid(root, "child-spawn")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert json.loads(stdout)["status"] == "interrupted"
        assert not wait_until_gone([child], within=10), "the task's child outlived the run"
    finally:
        if proc.poll() is None:
            kill_quietly(proc.pid)
            proc.communicate()
        if child is not None:
            kill_quietly(child)


# -- when normandy itself is killed ---------------------------------------------------------


@pytest.mark.parametrize("executor", STOPPING)
def test_the_workers_of_a_killed_normandy_exit(project, executor):
    """SIGKILL of ``normandy run`` left its workers (one blocked writing its log pipe, one
    quiet: it would finish its task beside a --resume that runs it again), the fork server
    and the resource tracker running for ever. Under dask: the cluster the run started,
    its workers, their fork servers and children."""
    root = project(
        """
  f:
    tags: [default]
    steps:
      s:
        spawn: {params: {how: child, then: hang}}
        chatter:
"""
    )
    proc = start(root, "--executor", executor, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    below: list[int] = []
    try:
        wait_for(proc, out(root, "hanging-spawn"), out(root, "chatter"), within=120)
        child = noted_pid(root, "child-spawn")
        below = sorted(descendants(proc.pid))
        workers = [noted_pid(root, "hanging-spawn"), noted_pid(root, "chatter")]
        assert {*workers, child} <= set(below), below
        commands = {pid: _command(pid) for pid in below}
        if executor == "local":
            assert any("_zygote" in c for c in commands.values()), commands
        proc.kill()
        proc.wait(timeout=30)
        left = wait_until_gone(below, within=15)
        assert not left, f"still running: {[commands[pid] for pid in sorted(left)]}"
        assert not out(root, "woke-spawn").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_quietly(*below)


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


# -- the working directory ------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_task_s_chdir_stays_in_the_task(project, normandy, executor_args, executor):
    """A task's os.chdir moved the later tasks of its worker, and under serial normandy
    itself ("logs in /tmp/…")."""
    root = project(
        """
  f:
    tags: [default]
    steps:
      s:
        move: {iter_param: {name: n, values: [1, 2]}}
      later:
        where: {iter_param: {name: n, values: [1, 2, 3, 4]}}
"""
    )
    result = normandy("run", *executor_args(executor), "--workers", "2", "--json", cwd=root)
    assert result.returncode == 0, result.output
    before = dict(out(root, f"before-move[{n}]").read_text().split(" ", 1) for n in (1, 2))
    for n in (1, 2, 3, 4):
        pid, cwd = out(root, f"where-where[{n}]").read_text().split(" ", 1)
        assert cwd != "/", f"where[{n}] ran in the folder an earlier task moved to"
        if pid in before:
            assert cwd == before[pid]
    log_dir = Path(json.loads(result.stdout)["logs"])
    assert f"logs in {log_dir.relative_to(root)}" in result.stderr
