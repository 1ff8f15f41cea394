"""Shared fixtures: run the real ``normandy`` command on temporary projects, and a Dask
cluster for the tests of the ``dask`` executor."""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from normandy_core.testing._project import normandy_command  # the plugin's, shared

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


RunNormandy = Callable[..., Result]


def run_normandy(
    *args: str,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Result:
    """Run the real command in a subprocess, to its end."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    proc = subprocess.run(
        [*normandy_command(), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def normandy() -> RunNormandy:
    """``normandy(*args, cwd=..., env={...})`` runs the real command in a subprocess."""
    return run_normandy


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """``make_project(conf_yaml, files={relpath: text})`` writes a project, returns its root."""

    def make(conf: str, files: dict[str, str] | None = None, root: Path | None = None) -> Path:
        root = root or tmp_path / "project"
        (root / "pipeline").mkdir(parents=True, exist_ok=True)
        (root / "pipeline" / "pipeline_conf.yml").write_text(textwrap.dedent(conf).lstrip())
        for rel, text in (files or {}).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip())
        return root

    return make


@pytest.fixture
def original_project(tmp_path: Path) -> Path:
    """A fresh copy of examples/original (normandy 0.3's sample, SPEC appendix A)."""
    dest = tmp_path / "original"
    shutil.copytree(
        EXAMPLES / "original",
        dest,
        ignore=shutil.ignore_patterns(
            "logs", ".normandy", "processed*", "__pycache__", "*.egg-info", "build"
        ),
    )
    return dest


# -- the dask executor ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    """The scheduler of a ``LocalCluster`` shared by the dask runs of one test module: two
    single-threaded worker processes, configured as the cluster ``normandy run --executor
    dask`` starts for itself. Each run connects to it with ``--address`` (as to a team's
    cluster): starting a cluster per run would cost seconds each. Runs never share state
    there: each has its own child processes on every worker."""
    pytest.importorskip("distributed")
    from normandy_core.executors.dask._cluster import local_cluster

    with kept_for_later_tests():
        cluster = local_cluster(2)
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close(timeout=30)


@pytest.fixture
def executor_args(request: pytest.FixtureRequest) -> Callable[[str], list[str]]:
    """``executor_args("dask")`` -> ``["--executor", "dask", "--address", <the module's
    cluster>]``; the other executors need only ``--executor X``."""

    def args(executor: str) -> list[str]:
        if executor == "dask":
            return ["--executor", "dask", "--address", request.getfixturevalue("dask_address")]
        return ["--executor", executor]

    return args


# -- no test leaves a process behind -----------------------------------------------------------

SESSION_MARK = "NORMANDY_TEST_SESSION"
"""Set in every process the test session starts (children inherit it): its value is this
session's, so that the processes of other sessions on the machine are never counted."""
TEST_MARK = "NORMANDY_TEST_CASE"
"""Which test started a process: set for the time of each test; ``-`` between tests, and
while a fixture of a wider scope starts what it keeps for later tests."""
LEFTOVER_GRACE = 15.0
"""Seconds a process may take to go after its test (a run's fork server ends just after
the run, on its own)."""

_session = secrets.token_hex(6)
_tests = itertools.count()
os.environ[SESSION_MARK] = _session
os.environ[TEST_MARK] = "-"


@contextlib.contextmanager
def kept_for_later_tests() -> Iterator[None]:
    """Around what a fixture of a module's or the session's scope starts: its processes
    are not the current test's to stop."""
    before = os.environ[TEST_MARK]
    os.environ[TEST_MARK] = "-"
    try:
        yield
    finally:
        os.environ[TEST_MARK] = before


@dataclass(frozen=True)
class _Process:
    pid: int
    ppid: int
    test: str
    command: str


def _ours() -> dict[int, _Process]:
    """The live processes this test session started, by pid (zombies are dead)."""
    session = f"{SESSION_MARK}={_session}".encode()
    found: dict[int, _Process] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            if session not in environ:
                continue
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        state, ppid = stat[stat.rfind(b")") + 2 :].split()[:2]
        if state in (b"Z", b"X"):
            continue
        prefix = f"{TEST_MARK}=".encode()
        test = next((v[len(prefix) :].decode() for v in environ if v.startswith(prefix)), "")
        text = command.replace(b"\0", b" ").decode(errors="replace").strip()
        found[int(entry)] = _Process(int(entry), int(ppid), test, text)
    return found


def _exempt(process: _Process) -> bool:
    """This process's own multiprocessing helpers, started by whichever test first needed
    them and kept for the session."""
    return process.ppid == os.getpid() and (
        "multiprocessing.forkserver" in process.command
        or "multiprocessing.resource_tracker" in process.command
    )


def _left_behind(test: str) -> list[_Process]:
    """Processes of ``test`` still running, and processes of any test whose parent is gone
    (an orphan: its parent is no process of this session's, nor this one)."""
    ours = _ours()
    return [
        p
        for p in ours.values()
        if not _exempt(p) and (p.test == test or (p.ppid not in ours and p.ppid != os.getpid()))
    ]


@pytest.fixture(autouse=True)
def signal_handlers_restored() -> Iterator[None]:
    """A test that changes this process's SIGINT or SIGTERM handler (a run's
    ``Interrupts``, a Dask worker's preload run in this process…) has it put back when
    it ends: a later test that sends itself Ctrl-C expects Python's own handler."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None and signal.getsignal(sig) is not handler:
                signal.signal(sig, handler)


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Fails a test that leaves a process behind (killing it): the processes it started,
    found by the mark they inherit, must be gone soon after it ends."""
    if not Path("/proc/self/environ").exists():  # no /proc: nothing to look at
        yield
        return
    test = f"{_session}-{next(_tests)}"
    os.environ[TEST_MARK] = test
    try:
        yield
    finally:
        os.environ[TEST_MARK] = "-"
    deadline = time.monotonic() + LEFTOVER_GRACE
    left = _left_behind(test)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = _left_behind(test)
    if left:
        for process in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(process.pid, signal.SIGKILL)
        listed = "\n".join(
            f"  {p.pid} (parent {p.ppid}, {'this test' if p.test == test else 'an orphan'}): "
            f"{p.command}"
            for p in left
        )
        pytest.fail(f"processes left behind (now killed):\n{listed}", pytrace=False)


# -- which tests run their dask variant --------------------------------------------------------

DASK_MATRIX = "NORMANDY_TEST_DASK"
"""``all``: every test parametrized over the executors runs its ``dask`` variant too. By
default the dask variants run where dask is the subject (:data:`DASK_FILES`) and for one
test of each capability (:data:`DASK_KEPT`): a local Dask cluster costs seconds of CPU
per test, and the whole matrix would take the suite past CI's budget on two cores."""

DASK_FILES = frozenset({"test_dask.py", "test_dask_protocol.py"})
DASK_KEPT = frozenset(
    {
        "tests/cli/test_run.py::test_variables_across_steps",
        "tests/cli/test_datasets.py::test_inputs_and_outputs_named_like_datasets_are_files",
        "tests/cli/test_flows_fit.py",
        "tests/core/test_config.py",
    }
)
"""Besides tests/cli/test_dask.py (a worker lost or killed, Ctrl-C, a shared store, the
run's own cluster…): variables between steps, datasets, pools and maps under Dask (and
the configuration's checks, which start no cluster)."""


def _dask_variant(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return False
    return any(value == "dask" for value in callspec.params.values() if isinstance(value, str))


def _dask_kept(item: pytest.Item) -> bool:
    if item.path.name in DASK_FILES:
        return True
    test = item.nodeid.partition("[")[0]
    return test in DASK_KEPT or test.partition("::")[0] in DASK_KEPT


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the dask variants but those of :data:`DASK_KEPT` (see :data:`DASK_MATRIX`)."""
    if os.environ.get(DASK_MATRIX) == "all":
        return
    dropped = [item for item in items if _dask_variant(item) and not _dask_kept(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        left = set(map(id, dropped))
        items[:] = [item for item in items if id(item) not in left]
