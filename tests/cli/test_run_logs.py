"""A run's logs under hostile conditions (SPEC 8, 11), end to end: task names of any
length or script — under every executor (``dask``: on the test module's cluster, see conftest).

Processes live in a project-local plugin module ``procs.py`` and report what they saw as
JSON files in ``<project>/out`` (found from ``procs.py``: a Dask worker does not have the
command's environment).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

EXECUTORS = ["local", "serial", "dask"]

PROCS = """
import json
from pathlib import Path

from normandy_core import hookimpl


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


@hookimpl
def normandy_processes():
    names = ["named", "read_back"]
    return {name: f"procs:{name}" for name in names}
"""

HEAD = """
confs:
  plugins: [procs]
  envs: {dev: {}}
flows:
"""

NAME_MAX = 143
"""The smallest file name limit in common use (eCryptfs), in bytes: every log file fits."""


@pytest.fixture
def project(make_project) -> Callable[[str], Path]:
    def make(flows: str) -> Path:
        return make_project(HEAD + flows, {"procs.py": PROCS})

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
