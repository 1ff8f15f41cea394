"""Lifecycle hooks, called in the orchestrator with the same behaviour under every executor,
and a hook that raises reported with its plugin's name."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

EXECUTORS = ["local", "serial", "dask"]
"""Every built-in executor (dask: on the module's cluster, see conftest)."""


CONF = """
confs:
  plugins: [procs, watcher]
  envs: {dev: {}}
flows:
  f:
    tags: [default]
    steps:
      one: [ok, bad]
      two: [ok2]
"""

PROCS = """
from normandy_core import hookimpl

def ok(pipe):
    pipe.vars["x"] = 1

def bad(params):
    raise ValueError("bad on purpose")

@hookimpl
def normandy_processes():
    return {"ok": ok, "ok2": ok, "bad": bad}
"""

WATCHER = """
import json, os
from normandy_core import hookimpl

def note(*event):
    with open(os.environ["HOOK_LOG"], "a") as out:
        out.write(json.dumps([*event, os.getpid()]) + "\\n")

@hookimpl
def normandy_before_run(run):
    note("before_run", len(run.plan))

@hookimpl
def normandy_before_process(task):
    note("before_process", task.key)

@hookimpl
def normandy_on_process_error(task, error):
    note("on_process_error", task.key, error.kind, error.type)

@hookimpl
def normandy_after_process(task, outcome):
    note("after_process", task.key, outcome.status, outcome.tolerated)

@hookimpl
def normandy_after_run(run, summary):
    note("after_run", summary.status)
"""


def _events(path: Path) -> list[list]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_hooks_called_in_the_orchestrator(
    normandy, make_project, tmp_path, executor, executor_args
):
    conf = CONF.replace("one: [ok, bad]", "one:\n        ok:\n        bad: {error_tolerance: true}")
    root = make_project(conf, {"procs.py": PROCS, "watcher.py": WATCHER})
    log = tmp_path / "hooks.jsonl"
    result = normandy("run", *executor_args(executor), cwd=root, env={"HOOK_LOG": str(log)})
    assert result.returncode == 0, result.output
    events = _events(log)
    pids = {e[-1] for e in events}
    assert len(pids) == 1  # all in the orchestrating process
    names = [e[:-1] for e in events]
    assert names[0] == ["before_run", 3]
    assert names[-1] == ["after_run", "succeeded"]
    middle = names[1:-1]
    assert sorted(map(tuple, middle[:2])) == [
        ("before_process", "f.one.bad"),
        ("before_process", "f.one.ok"),
    ]
    assert ["on_process_error", "f.one.bad", "failed", "ValueError"] in middle
    assert ["after_process", "f.one.bad", "failed", True] in middle
    assert ["after_process", "f.one.ok", "succeeded", False] in middle
    assert middle.index(["on_process_error", "f.one.bad", "failed", "ValueError"]) < middle.index(
        ["after_process", "f.one.bad", "failed", True]
    )
    assert middle[-2:] == [
        ["before_process", "f.two.ok2"],
        ["after_process", "f.two.ok2", "succeeded", False],
    ]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_failing_hook_is_reported_and_the_run_goes_on(
    normandy, make_project, executor, executor_args
):
    broken = (
        "from normandy_core import hookimpl\n\n"
        "@hookimpl\ndef normandy_after_process(task):\n"
        "    raise RuntimeError('hook is broken')\n"
    )
    conf = CONF.replace("[ok, bad]", "[ok]").replace("[procs, watcher]", "[procs, broken]")
    root = make_project(conf, {"procs.py": PROCS, "broken.py": broken})
    result = normandy("run", *executor_args(executor), cwd=root)
    assert result.returncode == 0, result.output
    assert (
        "plugin 'broken' failed in hook normandy_after_process: RuntimeError: hook is broken"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_original_example_installed_as_a_package(normandy, original_project, tmp_path):
    """The 0.3 sample's processes, pip-installed with their entry points, run the project
    (its own src/ folder out of the way)."""
    import subprocess
    import sys

    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(original_project),
        ],
        check=True,
    )
    (original_project / "src").rename(original_project / "src-unused")
    env = {"PYTHONPATH": str(site)}
    listed = normandy("list", cwd=original_project, env=env)
    assert "original-example" in listed.stdout, listed.output
    result = normandy("run", "--tags", "complete", cwd=original_project, env=env)
    assert result.returncode == 0, result.output
    assert sorted(os.listdir(original_project / "processed_dev")) == [
        "data_extra.csv",
        "sample_process.csv",
    ]


WRAPPER = """
import json, os
from normandy_core import hookimpl

def note(*event):
    with open(os.environ["HOOK_LOG"], "a") as out:
        out.write(json.dumps(list(event)) + "\\n")

@hookimpl(wrapper=True)
def normandy_after_process(task, outcome):
    note("around:before", task.key, outcome.status)
    result = yield
    note("around:after", task.key)
    return result
"""


def test_a_wrapper_hook_wraps_the_others(normandy, make_project, tmp_path):
    """pluggy's ``@hookimpl(wrapper=True)`` runs around the other implementations: hooks
    go through pluggy's hook caller, not function by function."""
    plain_module = (
        "import json, os\nfrom normandy_core import hookimpl\n\n"
        "@hookimpl\ndef normandy_after_process(task):\n"
        "    with open(os.environ['HOOK_LOG'], 'a') as out:\n"
        "        out.write(json.dumps(['plain', task.key]) + '\\n')\n"
    )
    conf = CONF.replace("[ok, bad]", "[ok]").replace("[procs, watcher]", "[procs, around, plain]")
    root = make_project(
        conf, {"procs.py": PROCS, "around.py": WRAPPER, "plain.py": plain_module}
    )
    log = tmp_path / "hooks.jsonl"
    result = normandy("run", cwd=root, env={"HOOK_LOG": str(log)})
    assert result.returncode == 0, result.output
    assert _events(log) == [
        ["around:before", "f.one.ok", "succeeded"],
        ["plain", "f.one.ok"],
        ["around:after", "f.one.ok"],
        ["around:before", "f.two.ok2", "succeeded"],
        ["plain", "f.two.ok2"],
        ["around:after", "f.two.ok2"],
    ]


def test_a_failing_wrapper_is_named(normandy, make_project):
    broken = (
        "from normandy_core import hookimpl\n\n"
        "@hookimpl(wrapper=True)\ndef normandy_before_run(run):\n"
        "    yield\n"
        "    raise RuntimeError('wrapper is broken')\n"
    )
    conf = CONF.replace("[ok, bad]", "[ok]").replace("[procs, watcher]", "[procs, broken]")
    root = make_project(conf, {"procs.py": PROCS, "broken.py": broken})
    result = normandy("run", cwd=root)
    assert result.returncode == 0, result.output
    assert (
        "plugin 'broken' failed in hook normandy_before_run: RuntimeError: wrapper is broken"
        in result.stderr
    )
