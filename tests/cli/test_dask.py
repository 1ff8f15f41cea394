"""The ``dask`` executor end to end (issue 8), beyond what every executor shares (that is in
``test_run``, ``test_faults``, ``test_history`` and ``test_hooks``, parametrized over it).

A scheduler and two workers run as separate ``dask scheduler`` / ``dask worker`` processes
on loopback (free ports; each in its own session, torn down with everything they started),
as a team's cluster would: the store is then a ``file://`` URL of a temporary folder, the
tasks' processes are imported by name on the workers, and real Dask worker processes are
killed. The cluster a run starts for itself (no ``--address``) is tested here too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import normandy_command

pytest.importorskip("distributed")

PROCS = """
import os
import signal
import time
from pathlib import Path

from normandy_core import hookimpl

OUT = Path(__file__).resolve().parent / "out"


def _count(name):
    OUT.mkdir(exist_ok=True)
    counter = OUT / name
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    return n


def _dask_worker_pid():
    import psutil
    for parent in psutil.Process().parents():  # the child, its fork server, the dask worker
        if "local._zygote" not in " ".join(parent.cmdline()):
            return parent.pid


def produce(pipe, log, params):
    import numpy as np
    which = params["which"]
    log.info("producing %s", which)
    print(f"printed by {which}")
    time.sleep(0.3)  # long enough for the other worker to take the other task
    pipe.vars[f"part_{which}"] = np.full(1000, ord(which), dtype="int64")
    OUT.mkdir(exist_ok=True)
    (OUT / f"worker-{which}").write_text(str(_dask_worker_pid()))


def combine(pipe, log):
    total = sum(int(pipe.vars[name].sum()) for name in pipe.vars.keys())
    log.warning("combined %s into %d", pipe.vars.keys(), total)
    pipe.vars["total"] = total


def kill_my_worker(pipe):
    n = _count("killer-count")
    (OUT / f"killer-pid-{n}").write_text(str(os.getpid()))
    pipe.vars["killer_attempt"] = n
    if n == 1:
        os.kill(_dask_worker_pid(), signal.SIGKILL)
        time.sleep(30)  # dies with its dask worker


def sleeper(params):
    _count(f"sleeper-{params.get('which', 'x')}-count")
    time.sleep(params.get("sleep", 1))


def pid_sleep(params):
    OUT.mkdir(exist_ok=True)
    (OUT / f"pid-{params['which']}").write_text(str(os.getpid()))
    time.sleep(60)


@hookimpl
def normandy_processes():
    names = ["produce", "combine", "kill_my_worker", "sleeper", "pid_sleep"]
    targets = {name: f"procs:{name}" for name in names}
    targets["elsewhere"] = "only_here:run"  # importable by normandy, not by the workers
    return targets
"""

ONLY_HERE = "def run(pipe):\n    pass\n"

HEAD = """
confs:
  plugins: [procs]
  envs: {dev: {}}
flows:
"""

PRODUCE = """
  f:
    tags: [default]
    steps:
      produce:
        produce:
          iter_param: {name: which, values: [a, b]}
      combine: [combine]
"""

TRACEBACK = "Traceback (most recent call last)"


# -- a cluster of separate processes ---------------------------------------------------------


def _dask(*args: str, log: Path) -> subprocess.Popen:
    dask = Path(sys.executable).parent / "dask"
    command = [str(dask)] if dask.exists() else [sys.executable, "-m", "distributed.cli.dask_spec"]
    return subprocess.Popen(
        [*command, *args],
        stdin=subprocess.DEVNULL,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: torn down with its children
    )


def _stop(proc: subprocess.Popen) -> None:
    for signum, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
            break


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``dask scheduler`` and two ``dask worker`` processes (one thread each) on loopback:
    ``{"address": ..., "client": a Client}``."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask-cluster")
    scheduler_file = folder / "scheduler.json"
    http = ("--dashboard-address", "127.0.0.1:0", "--no-dashboard")
    procs = [
        _dask(
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--scheduler-file",
            str(scheduler_file),
            *http,
            log=folder / "scheduler.log",
        )
    ]
    client = None
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, (folder / "scheduler.log").read_text()
            time.sleep(0.1)
        for i in range(2):
            procs.append(
                _dask(
                    "worker",
                    "--scheduler-file",
                    str(scheduler_file),
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    *http,
                    log=folder / f"worker-{i}.log",
                )
            )
        client = Client(scheduler_file=str(scheduler_file), timeout=60)
        client.wait_for_workers(2, timeout=60)
        yield {"address": client.scheduler.address, "client": client}
    finally:
        if client is not None:
            client.close()
        for proc in reversed(procs):
            _stop(proc)


@pytest.fixture
def project(make_project):
    def make(flows: str = PRODUCE, head: str = HEAD) -> Path:
        return make_project(head + flows, {"procs.py": PROCS, "extra/only_here.py": ONLY_HERE})

    return make


def run(normandy, root: Path, *args: str, timeout: float = 120):
    return normandy(
        "run",
        "--json",
        *args,
        cwd=root,
        env={"PYTHONPATH": str(root / "extra")},  # only_here: normandy sees it, workers do not
        timeout=timeout,
    )


def tasks(result) -> dict[str, dict[str, Any]]:
    return {f"{t['flow']}.{t['step']}.{t['task']}": t for t in json.loads(result.stdout)["tasks"]}


def _attempt_errors(root: Path, run_id: str) -> list[tuple[str, str]]:
    """The failed attempts of a run, as recorded in the history: (kind, message)."""
    db = sqlite3.connect(root / ".normandy" / "history.sqlite")
    try:
        return db.execute(
            "SELECT error_kind, error_message FROM attempts WHERE run_id = ? "
            "AND error_kind IS NOT NULL ORDER BY key, attempt",
            (run_id,),
        ).fetchall()
    finally:
        db.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    with contextlib.suppress(OSError):
        return "\nState:\tZ" not in status.read_text()
    return True


def gone(pids: list[int], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- on a cluster of separate processes ------------------------------------------------------


def test_variables_and_logs_through_a_shared_store(normandy, project, cluster, tmp_path):
    store = tmp_path / "shared-store"
    root = project(head=HEAD.replace("confs:", f"confs:\n  store: {store.as_uri()}"))
    result = run(normandy, root, "--executor", "dask", "--address", cluster["address"])
    assert result.returncode == 0, result.output
    data = json.loads(result.stdout)
    assert {t["status"] for t in data["tasks"]} == {"succeeded"}
    # the two tasks of the first step ran on the two workers, neither in normandy
    workers = {(root / "out" / f"worker-{w}").read_text() for w in "ab"}
    assert len(workers) == 2
    assert str(os.getpid()) not in workers
    # the variables went to the store, committed; nothing to .normandy but the history
    run_dir = store / "runs" / data["run_id"]
    assert sorted(p.name for p in (run_dir / "vars" / "f").iterdir()) == [
        "part_a.nv",
        "part_b.nv",
        "total.nv",
    ]
    assert not (run_dir / "staging").exists()
    assert not (root / ".normandy" / "runs").exists()
    from normandy_core.store import read_value

    assert read_value(run_dir / "vars" / "f" / "total.nv") == 1000 * (ord("a") + ord("b"))
    # the workers' lines reached the console and the run's files, in order
    logs = root / "logs" / data["run_id"]
    for which in "ab":
        own = (logs / f"process-f.produce.produce[{which}].log").read_text()
        assert f"producing {which}" in own and f"printed by {which}" in own
        assert own.index(f"producing {which}") < own.index("succeeded in")
        assert f"printed by {which}" in result.stderr
    assert "combined ['part_a', 'part_b'] into" in (logs / "flow-f.log").read_text()
    assert "combined ['part_a', 'part_b'] into" in (logs / "run.log").read_text()
    assert f"executor dask, the cluster at {cluster['address']}" in (logs / "run.log").read_text()


def test_configured_in_the_file(normandy, project, cluster, tmp_path):
    head = HEAD.replace(
        "confs:",
        f"confs:\n  executor: dask\n  dask: {{address: '{cluster['address']}'}}\n"
        f"  store: {tmp_path / 'shared'}",
    )
    root = project(head=head)
    result = run(normandy, root)
    assert result.returncode == 0, result.output
    data = json.loads(result.stdout)
    assert (tmp_path / "shared" / "runs" / data["run_id"] / "vars" / "f" / "total.nv").exists()
    shown = normandy("runs", data["run_id"], "--json", cwd=root)
    assert json.loads(shown.stdout)["executor"] == "dask"


def test_a_process_the_workers_cannot_import(normandy, project, cluster):
    root = project("""
  f:
    tags: [default]
    steps:
      s: [elsewhere]
""")
    result = run(normandy, root, "--executor", "dask", "--address", cluster["address"])
    assert result.returncode == 1, result.output
    task = tasks(result)["f.s.elsewhere"]
    assert task["status"] == "failed"
    message = task["error"]["message"]
    assert "cannot import process 'elsewhere' (only_here:run" in message
    assert "No module named 'only_here'" in message
    assert "on the dask worker tcp://127.0.0.1:" in message
    assert "install the package that provides it on every worker" in message
    assert "No module named 'only_here'" in result.stderr
    assert f"(on the dask worker {message.split('on the dask worker ')[1]})" in result.stderr


def test_a_killed_worker_fails_only_its_task_and_it_is_not_run_twice(normandy, project, cluster):
    """This scheduler has dask's default allowed-failures (3): it starts the attempt again
    on the other worker, which Normandy refuses; the task's retry then runs it."""
    root = project("""
  f:
    tags: [default]
    steps:
      s:
        kill_my_worker: {retries: 1}
        sleeper: {params: {which: a, sleep: 2}}
""")
    result = run(normandy, root, "--executor", "dask", "--address", cluster["address"])
    assert result.returncode == 0, result.output
    killer = tasks(result)["f.s.kill_my_worker"]
    assert (killer["status"], killer["attempts"]) == ("succeeded", 2)
    assert (root / "out" / "killer-count").read_text() == "2"  # once per attempt
    assert "attempt 1 failed (crashed)" in result.stderr
    [(kind, message)] = _attempt_errors(root, json.loads(result.stdout)["run_id"])
    assert kind == "crashed" and "Normandy runs an attempt at most once" in message
    assert tasks(result)["f.s.sleeper"]["status"] == "succeeded"
    assert (root / "out" / "sleeper-a-count").read_text() == "1"
    first = int((root / "out" / "killer-pid-1").read_text())
    assert gone([first]), "the killed worker's task process is still running"
    cluster["client"].wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_ctrl_c_leaves_the_cluster_idle_and_usable(project, cluster, normandy):
    root = project("""
  f:
    tags: [default]
    steps:
      s:
        pid_sleep:
          iter_param: {name: which, values: [a, b]}
""")
    command = [*normandy_command(), "run", "--json", "--executor", "dask"]
    proc = subprocess.Popen(
        [*command, "--address", cluster["address"]],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        files = [root / "out" / "pid-a", root / "out" / "pid-b"]
        deadline = time.monotonic() + 60
        while not all(f.exists() and f.read_text() for f in files):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        pids = [int(f.read_text()) for f in files]
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert json.loads(stdout)["status"] == "interrupted"
    assert TRACEBACK not in stderr
    assert gone(pids), "the tasks' processes still run on the cluster"
    client = cluster["client"]
    assert all(not keys for keys in client.processing().values())
    # nothing of the run is left below any worker (its pool's fork server ended with it)
    below = client.run(lambda: [p.cmdline() for p in __import__("psutil").Process().children()])
    for children in below.values():
        assert not any("local._zygote" in " ".join(c) for c in children), below
    # and the cluster serves the next run
    after = run(normandy, project(), "--executor", "dask", "--address", cluster["address"])
    assert after.returncode == 0, after.output


def test_a_store_the_workers_cannot_reach(normandy, project, cluster):
    pytest.importorskip("fsspec")
    root = project(head=HEAD.replace("confs:", "confs:\n  store: memory://only-in-normandy/x"))
    result = run(normandy, root, "--executor", "dask", "--address", cluster["address"])
    assert result.returncode == 2, result.output
    assert "cannot be reached from dask workers" in result.stderr
    assert "point confs.store at storage every worker reaches" in result.stderr
    assert TRACEBACK not in result.output
    assert normandy("runs", "--json", cwd=root).stdout.strip() == "[]"


# -- the cluster a run starts for itself -----------------------------------------------------


def test_a_lost_worker_of_the_runs_own_cluster(normandy, project):
    """``allowed-failures`` is 0 on the run's own cluster: the lost worker's task fails as
    crashed at once. With one worker the other task was only queued there: it runs, once,
    on the worker that replaces it."""
    root = project("""
  f:
    tags: [default]
    steps:
      s:
        kill_my_worker: {error_tolerance: true}
        sleeper: {params: {which: b, sleep: 0.5}}
      after:
        - sleeper: {params: {which: c, sleep: 0}}
""")
    result = run(normandy, root, "--executor", "dask", "--workers", "1")
    assert result.returncode == 0, result.output
    done = tasks(result)
    killer = done["f.s.kill_my_worker"]
    assert (killer["status"], killer["tolerated"], killer["attempts"]) == ("crashed", True, 1)
    assert "the dask worker tcp://127.0.0.1:" in killer["error"]["message"]
    assert "died (killed, crashed, or out of memory)" in killer["error"]["message"]
    assert (root / "out" / "killer-count").read_text() == "1"
    assert gone([int((root / "out" / "killer-pid-1").read_text())])
    assert done["f.s.sleeper"]["status"] == "succeeded"
    assert (root / "out" / "sleeper-b-count").read_text() == "1"
    assert done["f.after.sleeper"]["status"] == "succeeded"
    assert "distributed" not in result.stderr  # dask's own log lines stay out of the console


# -- choosing and configuring the executor ---------------------------------------------------


def test_an_unreachable_scheduler(normandy, project):
    root = project()
    result = normandy(
        "run",
        "--executor",
        "dask",
        "--address",
        "tcp://127.0.0.1:9",  # the discard port: nothing listens there
        cwd=root,
        env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"},
    )
    assert result.returncode == 2, result.output
    assert "normandy: error: cannot reach the dask scheduler at tcp://127.0.0.1:9" in result.stderr
    assert "dask scheduler" in result.stderr and "--address" in result.stderr
    assert TRACEBACK not in result.output
    assert not (root / "logs").exists()
    assert normandy("runs", "--json", cwd=root).stdout.strip() == "[]"


def test_address_is_for_a_cluster(normandy, project):
    result = normandy("run", "--address", "tcp://127.0.0.1:9", cwd=project())
    assert result.returncode == 2, result.output
    assert "--address" in result.stderr and "--executor dask" in result.stderr


HIDE_DASK = """
import sys
for name in ("dask", "distributed", "fsspec"):
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
"""


@pytest.mark.parametrize("command", ["run", "validate"])
def test_without_the_extra(normandy, project, tmp_path, command):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE_DASK)
    root = project(head=HEAD.replace("confs:", "confs:\n  executor: dask"))
    result = normandy(command, cwd=root, env={"PYTHONPATH": str(site)})
    assert result.returncode == 2, result.output
    assert "confs.executor: executor 'dask' cannot run: it needs distributed and fsspec" in (
        result.stderr
    )
    assert "pip install 'normandy[dask]'" in result.stderr
    assert TRACEBACK not in result.output
    listed = normandy("list", cwd=root, env={"PYTHONPATH": str(site)})
    assert listed.returncode == 0, listed.output  # the plugin itself loads without dask


def test_version_and_list_import_nothing_of_dask(project):
    root = project(head=HEAD.replace("confs:", "confs:\n  executor: dask"))
    code = textwrap.dedent(f"""
        import sys
        from normandy_cli.app import main
        for argv in (["--version"], ["list", "--project", {str(root)!r}]):
            try:
                main(argv)
            except SystemExit as exit:
                assert not exit.code, exit.code
        heavy = ("dask", "distributed", "fsspec")
        print("IMPORTED", sorted(m for m in sys.modules if m.split(".")[0] in heavy))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "IMPORTED []" in result.stdout


# -- a store through fsspec, end to end ------------------------------------------------------


def test_a_memory_store_through_fsspec(normandy, project):
    """``memory://`` lives in one process: with ``serial`` it is a real fsspec store for a
    whole run, the path ``s3://`` and the others take."""
    pytest.importorskip("fsspec")
    root = project(head=HEAD.replace("confs:", "confs:\n  store: memory://bucket/normandy"))
    result = run(normandy, root, "--executor", "serial")
    assert result.returncode == 0, result.output
    assert {t["status"] for t in json.loads(result.stdout)["tasks"]} == {"succeeded"}
    assert "combined ['part_a', 'part_b'] into 195000" in result.stderr
    assert not (root / ".normandy" / "runs").exists()
