"""A run's logs under hostile conditions (SPEC 8, 11), end to end: task names of any
length or script, log files that cannot be written, chatty tasks and tasks that die —
under every executor (``dask``: on the test module's cluster, see conftest).

Processes live in a project-local plugin module ``procs.py`` and report what they saw as
JSON files in ``<project>/out`` (found from ``procs.py``: a Dask worker does not have the
command's environment).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import normandy_command

EXECUTORS = ["local", "serial", "dask"]

PROCS = """
import json
import logging
import os
import shutil
import time
from pathlib import Path

import helperlib
from normandy_core import hookimpl

logger = logging.getLogger(__name__)


def _dump(name, data):
    folder = Path(__file__).resolve().parent / "out"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(data, sort_keys=True))


def named(pipe, log, params):
    which = params["which"]
    log.info("logged by the task of %d characters", len(which))
    print("printed by the task of", len(which), "characters")
    pipe.vars[f"v{len(which)}"] = which


def read_back(pipe):
    _dump(f"read_back-{len(pipe.flow)}.json", {name: pipe.vars[name] for name in pipe.vars})


def chatty(log, params):
    for i in range(params["lines"]):
        print(f"chatty line {i} " + "x" * 80)
    log.info("chatty is done")


def after(log):
    log.warning("a line after the trouble")


def crashing(params):
    for i in range(params["lines"]):
        print(f"before the crash {i}")
    os._exit(3)


def hanging(log, params):
    for i in range(params["lines"]):
        log.info("before the timeout %d", i)
    time.sleep(60)


def leaky(pipe, log):
    key, password = pipe.credentials["key"], pipe.credentials["password"]
    print(key)
    print("one line of it:", key.splitlines()[1])
    line = key.splitlines()[1]
    print("in two flushed pieces:", line[:10], end="", flush=True)
    print(line[10:])
    log.info("the key:\\n%s", key)
    log.info("settings %r", {"password": password})
    print(json.dumps({"password": password}))
    log.warning("as a list: %s", [password])
    check_connection(password)


def check_connection(password):
    try:
        raise ValueError(f"refused {password}")
    except ValueError:
        raise RuntimeError("no connection")


def modlog(pipe, params):
    logger.info("module logger of %s, with %s", pipe.task, pipe.credentials["token"])
    logger.debug("module debug line")
    helperlib.fetch(params.get("what", "rows"))
    try:
        {}["missing"]
    except KeyError:
        logger.warning("a warning with its exception", exc_info=True)


@hookimpl
def normandy_after_process(task):
    logging.getLogger("procs.hooks").warning(f"hook after {task.key}, in the orchestrator")


def sabotage(pipe):
    folder = pipe.path / "logs" / pipe.run_id
    shutil.rmtree(folder)
    folder.write_text("the log folder is a file now")


@hookimpl
def normandy_processes():
    names = [
        "named", "read_back", "chatty", "after", "sabotage", "crashing", "hanging", "leaky",
        "modlog",
    ]
    return {name: f"procs:{name}" for name in names}
"""

HEAD = """
confs:
  plugins: [procs]
  envs: {dev: {}}
flows:
"""
HEAD_CREDENTIALS = HEAD.replace("{dev: {}}", "{dev: {credentials: conf/credentials.yml}}")

NAME_MAX = 143
"""The smallest file name limit in common use (eCryptfs), in bytes: every log file fits."""


HELPERLIB = """
import logging

log = logging.getLogger(__name__)


def fetch(what):
    log.info("the library fetched %s", what)
    log.debug("the library's debug line")
"""


@pytest.fixture
def project(make_project) -> Callable[[str], Path]:
    def make(flows: str, head: str = HEAD, files: dict[str, str] | None = None) -> Path:
        return make_project(
            head + flows, {"procs.py": PROCS, "helperlib.py": HELPERLIB, **(files or {})}
        )

    return make


@pytest.fixture
def run(normandy, executor_args):
    """``run(root, executor, *args)``: ``normandy run --executor X --workers 2 --json``."""

    def call(root: Path, executor: str, *args: str):
        return normandy(
            "run", *executor_args(executor), "--workers", "2", "--json", *args, cwd=root
        )

    return call


def _log_dir(root: Path, data: dict[str, Any]) -> Path:
    return root / "logs" / data["run_id"]


def _out(root: Path, name: str) -> Any:
    return json.loads((root / "out" / name).read_text())


# -- task names of any length or script ---------------------------------------------------------

ACCENTED = "é" * 90  # 540 bytes once %-encoded
CJK = "東京都" * 9  # 27 characters, 243 bytes once %-encoded
PATH = "/data/" + "/".join(["incoming"] * 7) + "/batch01.csv"  # 80 characters
LONG_FLOW = "nightly_" + "l" * 240

LONG_NAMES = f"""
  f:
    tags: [default]
    steps:
      s:
        named:
          iter_param: {{name: which, values: ["{ACCENTED}", "{CJK}", "{PATH}", short]}}
      check: [read_back]
  {LONG_FLOW}:
    tags: [default]
    steps:
      s:
        named: {{params: {{which: in the long flow}}}}
      check: [read_back]
"""


@pytest.mark.parametrize("executor", EXECUTORS)
def test_task_and_flow_names_of_any_length_get_log_files_and_variables(
    project, run, normandy, executor
):
    """A %-encoded task name of 540 bytes once made ``process-….log`` too long for the
    file system: the log thread died, the run failed on its staging folder."""
    assert len(PATH) == 80 and len(CJK) == 27
    root = project(LONG_NAMES)
    result = run(root, executor)
    assert result.returncode == 0, result.output
    assert "Traceback" not in result.stderr
    data = json.loads(result.stdout)
    assert data["log_problems"] == []
    log_dir = _log_dir(root, data)
    names = sorted(p.name for p in log_dir.iterdir())
    assert all(len(name.encode()) <= NAME_MAX for name in names), names
    tasks = [f"f.s.named[{value}]" for value in (ACCENTED, CJK, PATH)]
    files = [n for n in names if n.startswith("process-f.s.named[")]
    assert len(files) == 4, names  # one a task, shortened where needed, none shared
    assert "process-f.s.named[short].log" in files  # a name that fits is kept as it is
    run_log = (log_dir / "run.log").read_text()
    for task, value in zip(tasks, (ACCENTED, CJK, PATH)):
        assert f"{task} | logged by the task of {len(value)} characters" in run_log
        [own] = [
            (log_dir / n).read_text()
            for n in files
            if f"logged by the task of {len(value)} characters" in (log_dir / n).read_text()
        ]
        assert f"printed by the task of {len(value)} characters" in own
    assert any(n.startswith("flow-nightly_lll") for n in names), names
    assert "in the long flow" not in run_log  # the value is not logged, its length is
    assert "logged by the task of 16 characters" in run_log
    # the variables written by every task were committed and read by the next step
    assert _out(root, "read_back-1.json") == {
        f"v{len(v)}": v for v in (ACCENTED, CJK, PATH, "short")
    }
    assert _out(root, f"read_back-{len(LONG_FLOW)}.json") == {"v16": "in the long flow"}
    report = root / "report.html"
    shown = normandy("report", data["run_id"], "--output", str(report), cwd=root)
    assert shown.returncode == 0, shown.output
    assert "logged by the task of 90 characters" in report.read_text()  # the log's tail


# -- log files that cannot be written -----------------------------------------------------------

CHATTY = """
  f:
    tags: [default]
    steps:
      s1: [FIRST]
      s2:
        chatty: {params: {lines: LINES}}
      s3: [after]
"""


def _limited(limit: int) -> list[str]:
    """The ``normandy`` command, started with a limit on the size of the files it writes
    (``RLIMIT_FSIZE``): past it a write fails as on a full disk (``EFBIG``; Python ignores
    ``SIGXFSZ``, so the write fails instead of killing the process)."""
    code = (
        "import os, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    command = normandy_command()
    if not os.path.isabs(command[0]):
        pytest.skip("the normandy command is not a file")
    return [sys.executable, "-c", code, *command]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_logs_past_a_full_disk_are_reported_and_the_run_goes_on(
    project, executor, executor_args
):
    """A log write that failed killed the log thread: every later line was lost, and a
    chatty task then waited forever on the full log pipe, the run with it."""
    root = project(CHATTY.replace("[FIRST]", "[after]").replace("LINES", "30000"))
    proc = subprocess.run(
        [*_limited(512 * 1024), "run", *executor_args(executor), "--workers", "2", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    assert data["status"] == "succeeded"
    log_dir = Path("logs") / data["run_id"]
    full = [log_dir / "run.log", log_dir / "flow-f.log", log_dir / "process-f.s2.chatty.log"]
    for path in full:
        warning = f"normandy: warning: cannot write {path}: File too large"
        assert proc.stderr.count(warning) == 1, proc.stderr[-3000:]  # once a file
    assert len(data["log_problems"]) == 3
    assert all("File too large" in problem for problem in data["log_problems"])
    # the console still gets every line, those after the trouble too
    assert "chatty line 29999 " in proc.stderr
    assert "f.s3.after | a line after the trouble" in proc.stderr
    for path in full:
        assert (root / path).stat().st_size <= 512 * 1024


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_log_folder_gone_mid_run_is_reported_and_the_run_goes_on(project, run, executor):
    """The run's log folder replaced by a file: no new log file can be made. Reported
    once a file, and neither the log thread nor the chatty task after it stop."""
    root = project(CHATTY.replace("FIRST", "sabotage").replace("LINES", "3000"))
    result = run(root, executor)
    assert result.returncode == 0, result.output[-3000:]
    data = json.loads(result.stdout)
    log_dir = Path("logs") / data["run_id"]
    warning = f"normandy: warning: cannot write {log_dir / 'process-f.s2.chatty.log'}: "
    assert result.stderr.count(warning + "Not a directory") == 1, result.stderr[-3000:]
    assert any("process-f.s2.chatty.log" in problem for problem in data["log_problems"])
    assert "chatty line 2999 " in result.stderr
    assert "f.s3.after | a line after the trouble" in result.stderr
    assert (root / log_dir).is_file()


# -- tasks that die ---------------------------------------------------------------------------


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_every_line_before_a_crash_or_a_timeout_is_filed(project, run, executor):
    """Lines leave a task as it writes them: its worker's death loses none of them."""
    root = project(
        """
  f:
    tags: [default]
    steps:
      s:
        crashing: {params: {lines: 5000}, error_tolerance: true}
        hanging: {params: {lines: 5000}, timeout: 2, error_tolerance: true}
"""
    )
    result = run(root, executor)
    assert result.returncode == 0, result.output[-3000:]
    data = json.loads(result.stdout)
    statuses = {t["task"]: t["status"] for t in data["tasks"]}
    assert statuses == {"crashing": "crashed", "hanging": "timed out"}
    log_dir = _log_dir(root, data)
    for task, text in (("crashing", "before the crash"), ("hanging", "before the timeout")):
        lines = (log_dir / f"process-f.s.{task}.log").read_text().splitlines()
        said = [line.split(" | ", 1)[1] for line in lines if f" | {text} " in line]
        assert said == [f"{text} {i}" for i in range(5000)], task


# -- secrets ------------------------------------------------------------------------------------

KEY_LINES = [
    "-----BEGIN PRIVATE KEY-----",
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu",
    "-----END PRIVATE KEY-----",
]
PASSWORD = 'it\'s "quoted"\\path\nsecond line-1234'
CREDENTIALS = (
    "key: |\n"
    + "".join(f"  {line}\n" for line in KEY_LINES)
    + f"password: {json.dumps(PASSWORD)}\n"
    + "short: tion\n"
)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_secrets_are_masked_in_every_form_and_normandys_words_are_not(project, run, executor):
    """A PEM key printed or logged was in clear (lines were split before masking), a
    password inside a logged repr or JSON too (its \\n, \\\\ and " escaped); and a secret
    like ``tion`` turned Python's ``During handling of the above exception`` into
    ``excep***``."""
    root = project(
        """
  f:
    tags: [default]
    steps:
      s: [leaky]
""",
        HEAD_CREDENTIALS,
        {"conf/credentials.yml": CREDENTIALS},
    )
    result = run(root, executor)
    assert result.returncode == 1, result.output[-3000:]
    forms = {PASSWORD, repr(PASSWORD)[1:-1], json.dumps(PASSWORD)[1:-1], *PASSWORD.splitlines()}
    forms |= {line for line in KEY_LINES}
    files = [p for p in (root / "logs").rglob("*") if p.is_file()]
    files += [p for p in (root / ".normandy").rglob("*") if p.is_file()]
    for where, text in [
        ("stdout", result.stdout),
        ("stderr", result.stderr),
        *((str(p), p.read_text(errors="replace")) for p in files),
    ]:
        for form in forms:
            assert form not in text, (where, form)
        assert "excep***" not in text, where
    [task_log] = (root / "logs").glob("*/process-f.s.leaky.log")
    for text in (result.stderr, task_log.read_text()):
        assert "During handling of the above exception, another exception occurred:" in text
        assert "Traceback (most recent call last):" in text
        assert ", in check_connection\n" in text
        assert "ValueError: refused ***" in text
        assert "RuntimeError: no connec***" in text  # the process's own words are masked
    log = task_log.read_text()
    assert "f.s.leaky | one line of it: ***" in log
    assert "f.s.leaky | in two flushed pieces: ***" in log  # was two lines, in the clear
    assert KEY_LINES[1][:10] not in log
    assert "f.s.leaky | settings {'password': '***'}" in log
    assert 'f.s.leaky | {"password": "***"}' in log
    assert "f.s.leaky | as a list: ['***']" in log
    assert "f.s.leaky | the key:\n***" in log
    summary = json.loads(result.stdout)
    [task] = summary["tasks"]
    assert task["error"]["message"] == "no connec***"


# -- module loggers -----------------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_module_loggers_reach_the_console_and_the_logs_at_the_runs_level(
    project, run, executor
):
    """``logging.getLogger(__name__).info(...)`` in a process or a library it uses
    reached nothing at --log-level info: only warnings, through Python's last resort."""
    root = project(
        """
  f:
    tags: [default]
    steps:
      s:
        modlog:
          iter_param: {name: what, values: [rows, columns]}
""",
        HEAD_CREDENTIALS,
        {"conf/credentials.yml": "token: tok-987654321\n"},
    )
    result = run(root, executor)
    assert result.returncode == 0, result.output[-3000:]
    data = json.loads(result.stdout)
    log_dir = _log_dir(root, data)
    for what in ("rows", "columns"):
        key = f"f.s.modlog[{what}]"
        own = (log_dir / f"process-{key}.log").read_text()
        for text in (own, result.stderr, (log_dir / "run.log").read_text()):
            assert f"INFO    {key} | module logger of modlog[{what}], with ***" in text
            assert f"INFO    {key} | the library fetched {what}" in text
            assert f"WARNING {key} | a warning with its exception\nTraceback" in text
            assert "KeyError: 'missing'" in text
            assert "debug line" not in text
            assert "tok-987654321" not in text
        other = "columns" if what == "rows" else "rows"
        assert f"fetched {other}" not in own
    # the orchestrator's own records are no task's, under serial too (same process)
    for path in log_dir.glob("process-*.log"):
        assert "hook after" not in path.read_text()
    assert "hook after f.s.modlog[rows], in the orchestrator" in result.stderr

    result = run(root, executor, "--log-level", "debug")
    assert result.returncode == 0, result.output[-3000:]
    log_dir = _log_dir(root, json.loads(result.stdout))
    own = (log_dir / "process-f.s.modlog[rows].log").read_text()
    assert "DEBUG   f.s.modlog[rows] | module debug line" in own
    assert "DEBUG   f.s.modlog[rows] | the library's debug line" in own
