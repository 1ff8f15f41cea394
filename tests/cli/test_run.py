"""``normandy run`` end to end (SPEC 4, 5, 7, 8): the real command on temporary projects.

Every test taking the ``executor`` fixture runs with ``--executor local`` (the local
pool), ``--executor serial`` (in the calling process) and ``--executor dask`` (on the test
module's Dask ``LocalCluster``). Processes live in a project-local plugin module ``procs.py``
(``confs.plugins: [procs]``) and report what they saw as JSON files in ``<project>/out``,
found from ``procs.py`` itself: a Dask worker does not have the command's environment.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import normandy_command

EXECUTORS = ["local", "serial", "dask"]
"""Every built-in executor (dask: on the module's cluster, see conftest)."""


PROCS = """
import json
import os
import time
from pathlib import Path

from normandy_core import hookimpl


def _out(name):
    folder = Path(__file__).resolve().parent / "out"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def _dump(name, data):
    _out(name).write_text(json.dumps(data, sort_keys=True, default=repr))


def timed(pipe, params):
    start = time.time()
    time.sleep(params.get("sleep", 0.5))
    end = time.time()
    _dump(f"timed-{params['which']}.json",
          {"step": pipe.step, "task": pipe.task, "pid": os.getpid(), "start": start, "end": end})


def show_params(params):
    _dump(f"params-{params['location']}.json", params)


def only_params(params):
    _dump("only_params.json", {"params": params, "type": type(params).__name__})


def api(pipe, log):
    import logging
    _dump("api.json", {
        "env": pipe.env,
        "confs": dict(pipe.confs),
        "env_confs": dict(pipe.get_env_confs()),
        "credentials": pipe.credentials,
        "path": str(pipe.path),
        "get_path": str(pipe.get_path()),
        "path_is_path": isinstance(pipe.path, Path) and isinstance(pipe.get_path(), Path),
        "run_id": pipe.run_id,
        "flow": pipe.flow,
        "step": pipe.step,
        "process": pipe.process,
        "task": pipe.task,
        "params": pipe.params,
        "tags": list(pipe.tags),
        "log_is_logger": isinstance(log, logging.Logger),
    })


def params_and_pipe(params, pipe):
    _dump("params_and_pipe.json", {"same": params is pipe.params, "params": params})


def mark(pipe, params):
    time.sleep(params.get("sleep", 0))
    _dump(f"mark-{pipe.flow}.{pipe.step}.{pipe.task}", {"pid": os.getpid()})


def boom(pipe):
    raise RuntimeError("boom: the process exploded")


def writer(pipe):
    pipe.vars.update("a", 1)
    pipe.vars["b"] = {"x": [1, 2]}
    _dump("writer.json", {"a": pipe.vars["a"], "b": pipe.vars.get("b"), "a_in": "a" in pipe.vars,
                          "keys": pipe.vars.keys()})


def storage_writer(pipe):
    from normandy_core.pipe import variables_storage
    storage = variables_storage()
    storage.update("c", "via-storage")
    _dump("storage_writer.json", {"same": storage is pipe.vars, "c": storage.get("c")})


def top_level_storage(pipe):
    from normandy_core import variables_storage
    variables_storage().update("d", "via-top-level")


def bad_writer(pipe):
    pipe.vars["lost"] = "should be discarded"
    raise RuntimeError("bad writer fails after writing")


def reader(pipe):
    out = {
        "a": pipe.vars.get("a"),
        "b": pipe.vars["b"],
        "c_in": "c" in pipe.vars,
        "c": pipe.vars.get("c"),
        "keys": list(pipe.vars.keys()),
        "lost_in": "lost" in pipe.vars,
        "default": pipe.vars.get("missing", "dflt"),
    }
    try:
        pipe.vars["missing"]
    except KeyError as exc:
        out["key_error"] = str(exc)
    for label, action in [("update", lambda: pipe.vars.update("../x", 1)),
                          ("setitem", lambda: pipe.vars.__setitem__("a/b", 1)),
                          ("get", lambda: pipe.vars.get(".."))]:
        try:
            action()
            out["invalid_" + label] = "no error"
        except ValueError as exc:
            out["invalid_" + label] = "ValueError: " + str(exc)
    _dump("reader.json", out)


def clash1(pipe):
    pipe.vars["shared"] = 1


def clash2(pipe):
    time.sleep(0.1)
    pipe.vars["shared"] = 2


def quick_writer(pipe):
    pipe.vars["early"] = "from quick_writer"


def slow_reader(pipe):
    time.sleep(0.8)
    _dump("slow_reader.json", {"early_in": "early" in pipe.vars, "keys": pipe.vars.keys()})


def keyed_writer(pipe, params):
    pipe.vars["v_" + params["which"].replace("/", "-slash-")] = params["which"]


def big_writer(pipe):
    import numpy as np
    pipe.vars["big"] = np.arange(2_621_440, dtype="float64")  # 20 MiB


def big_reader(pipe):
    import numpy as np
    arr = pipe.vars["big"]
    _dump("big.json", {
        "type": type(arr).__name__, "shape": list(arr.shape), "dtype": str(arr.dtype),
        "equal": bool(np.array_equal(arr, np.arange(2_621_440, dtype="float64"))),
        "nbytes": int(arr.nbytes),
    })


def talk(pipe, log, params):
    which = params.get("which", "x")
    log.debug(f"debug from {which}")
    log.info(f"info from {which}")
    print(f"printed by {which}")
    log.warning(f"warning from {which}")
    log.error(f"error from {which}")


def leak(pipe, log):
    password = pipe.credentials["db"]["password"]
    token = pipe.credentials["token"]
    log.info("connecting with %s", password)
    log.warning(f"token is {token}")
    print("password:", password)
    try:
        raise ValueError(f"login refused for {password}")
    except ValueError:
        log.exception("handled a login error")
    raise RuntimeError(f"cannot connect with {password} and {token}")


def flaky(pipe):
    counter = _out("flaky-count")
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    pipe.vars["flaky_attempt"] = n
    if n < 3:
        raise RuntimeError(f"attempt {n} fails")


def always_fails(pipe):
    raise RuntimeError("always fails")


def show_var(pipe, params):
    _dump(f"var-{params['name']}.json", {"value": pipe.vars.get(params["name"], "MISSING")})


@hookimpl
def normandy_processes():
    names = [name for name, value in globals().items()
             if callable(value) and not name.startswith("_") and name not in ("hookimpl", "Path")]
    return {name: f"procs:{name}" for name in names}
"""

HEAD = """
confs:
  plugins: [procs]
  envs: {dev: {}}
flows:
"""


# -- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture(params=EXECUTORS)
def executor(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def project(make_project) -> Callable[..., Path]:
    """``project(flows_yaml)``: a project with ``procs.py``; ``flows_yaml`` goes after HEAD
    unless it starts with ``confs:``."""

    def make(conf: str, files: dict[str, str] | None = None) -> Path:
        text = conf if conf.lstrip().startswith("confs:") else HEAD + conf
        return make_project(text, {"procs.py": PROCS, **(files or {})})

    return make


@pytest.fixture
def run(normandy, executor_args):
    """``run(root, executor, *args)``: ``normandy run --executor X --workers 2 *args``."""

    def call(root: Path, executor: str, *args: str):
        return normandy("run", *executor_args(executor), "--workers", "2", *args, cwd=root)

    return call


def out(root: Path, name: str) -> Any:
    return json.loads((root / "out" / name).read_text())


def summary(result) -> dict:
    return json.loads(result.stdout)


def tasks_by_name(data: dict) -> dict[str, dict]:
    return {f"{t['flow']}.{t['step']}.{t['task']}": t for t in data["tasks"]}


# -- parallelism and step order -------------------------------------------------------------

TIMED = """
  f:
    tags: [default]
    steps:
      first:
        timed:
          iter_param: {name: which, values: [a, b]}
      second:
        timed:
          iter_param: {name: which, values: [c, d]}
"""


def _step_order(root: Path) -> None:
    first = [out(root, f"timed-{w}.json") for w in "ab"]
    second = [out(root, f"timed-{w}.json") for w in "cd"]
    assert {r["step"] for r in first} == {"first"}
    assert {r["step"] for r in second} == {"second"}
    assert min(r["start"] for r in second) >= max(r["end"] for r in first)


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_processes_of_a_step_overlap_in_different_workers(project, run, executor):
    root = project(TIMED)
    result = run(root, executor, "--param", "sleep=0.5", "--json")
    assert result.returncode == 0, result.output
    a, b = out(root, "timed-a.json"), out(root, "timed-b.json")
    assert a["pid"] != b["pid"]
    assert a["start"] < b["end"] and b["start"] < a["end"], (a, b)
    pids = {t["task"]: t["pid"] for t in summary(result)["tasks"]}
    assert (pids["timed[a]"], pids["timed[b]"]) == (a["pid"], b["pid"])
    _step_order(root)


def test_steps_run_one_after_another(project, run, executor):
    root = project(TIMED)
    result = run(root, executor, "--param", "sleep=0.1", "--json")
    assert result.returncode == 0, result.output
    _step_order(root)
    names = [t["task"] for t in summary(result)["tasks"]]
    assert names == ["timed[a]", "timed[b]", "timed[c]", "timed[d]"]


# -- params -----------------------------------------------------------------------------


def test_params_precedence_and_iter_param(project, run, executor):
    root = project(
        """
  f:
    tags: [default]
    params: {version: Andromeda, limit: 10, region: eu, keep: flow}
    steps:
      s:
        show_params:
          params: {limit: 100, region: proc, mode: fast}
          iter_param: {name: location, values: [Thessia, Rannoch]}
"""
    )
    result = run(
        root,
        executor,
        "--param",
        "region=us",
        "--param",
        "ratio=0.5",
        "--param",
        "flag=true",
        "--param",
        "count=007",
        "--json",
    )
    assert result.returncode == 0, result.output
    for location in ("Thessia", "Rannoch"):
        assert out(root, f"params-{location}.json") == {
            "version": "Andromeda",  # flow
            "keep": "flow",  # flow
            "limit": 100,  # process over flow
            "mode": "fast",  # process
            "region": "us",  # command line over process and flow
            "ratio": 0.5,  # YAML-parsed
            "flag": True,
            "count": 7,
            "location": location,  # iter_param
        }
    assert [t["task"] for t in summary(result)["tasks"]] == [
        "show_params[Thessia]",
        "show_params[Rannoch]",
    ]


def test_params_from_the_command_line_are_read_as_yaml_or_kept_as_text(project, normandy):
    root = project("""
  f:
    tags: [default]
    steps:
      s: [only_params]
""")
    args = ["--param", "limit=100", "--param", "msg=a: b: c", "--param", "raw=[unclosed"]
    result = normandy("run", "--executor", "serial", *args, cwd=root)
    assert result.returncode == 0, result.output
    assert out(root, "only_params.json")["params"] == {
        "limit": 100,
        "msg": "a: b: c",  # not valid YAML: the text itself
        "raw": "[unclosed",
    }


PARAM_BOMB = (
    "["
    + ", ".join(["&a0 [lol]"] + [f"&a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)])
    + "]"
)
"""355 characters standing for 9**8 values: before, ``normandy run`` hung on it."""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "&a [*a]",
            "Invalid value for --param x: an alias refers to a node that contains it; remove "
            "the cycle (column 5)",
        ),
        (
            PARAM_BOMB,
            "Invalid value for --param x: this value would expand to 1,129,312 values through "
            "its aliases, more than the 1,000,000 allowed",
        ),
        (
            "!!python/object/apply:os.system [ls]",
            "Invalid value for --param x: YAML tag !!python/object/apply:os.system is not "
            "allowed; remove it (column 1)",
        ),
    ],
    ids=["alias-cycle", "alias-bomb", "python-tag"],
)
def test_a_param_yaml_refuses_is_a_usage_error(project, value, expected):
    root = project("""
  f:
    tags: [default]
    steps:
      s: [only_params]
""")
    result = _run_capped(["run", "--executor", "serial", "--param", f"x={value}"], root)
    assert result.returncode == 2, result.stderr[-2000:]
    assert expected in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / "out").exists()


def _run_capped(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``normandy *args`` with its memory capped at 2 GiB: should the bound on YAML aliases
    ever go, the test fails with a MemoryError instead of filling the machine's memory."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))

    return subprocess.run(
        [*normandy_command(), *args],
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        preexec_fn=cap,
    )


# -- the process API ----------------------------------------------------------------------

API_CONF = """
confs:
  plugins: [procs]
  envs:
    dev:
      read: data/dev
    prod:
      credentials: conf/prod_credentials.yml
      read: data/prod
      number: 3
flows:
  f:
    tags: [default, nightly]
    params: {version: Trilogy}
    steps:
      first:
        - api: {params: {limit: 5}}
      second:
        - only_params: {params: {x: 1}}
        - params_and_pipe
"""


def test_process_api(project, run, executor):
    root = project(
        API_CONF,
        {"conf/prod_credentials.yml": "user: alice\ndb: {password: pw-prod-123, port: 5432}\n"},
    )
    result = run(root, executor, "--env", "prod", "--json")
    assert result.returncode == 0, result.output
    data = out(root, "api.json")
    assert data["env"] == "prod"
    assert data["confs"]["read"] == "data/prod" and data["confs"]["number"] == 3
    assert data["env_confs"] == data["confs"]
    assert data["credentials"] == {"user": "alice", "db": {"password": "pw-prod-123", "port": 5432}}
    assert Path(data["path"]).resolve() == root.resolve()
    assert data["get_path"] == data["path"]
    assert data["path_is_path"] is True
    assert data["run_id"] == summary(result)["run_id"]
    assert (data["flow"], data["step"], data["process"], data["task"]) == (
        "f",
        "first",
        "api",
        "api",
    )
    assert data["params"] == {"version": "Trilogy", "limit": 5}
    assert set(data["tags"]) >= {"default"}
    assert data["log_is_logger"] is True
    assert out(root, "only_params.json") == {
        "params": {"version": "Trilogy", "x": 1},
        "type": "dict",
    }
    assert out(root, "params_and_pipe.json") == {"same": True, "params": {"version": "Trilogy"}}


def test_credentials_empty_without_a_file(project, run, executor):
    root = project(API_CONF)
    result = run(root, executor, "--flow", "f")
    assert result.returncode == 0, result.output
    data = out(root, "api.json")
    assert data["env"] == "dev"
    assert data["credentials"] == {}
    assert data["confs"] == {"read": "data/dev"}


# -- variables ----------------------------------------------------------------------------

VARS = """
  f:
    tags: [default]
    steps:
      write:
        writer:
        storage_writer:
        bad_writer: {error_tolerance: true}
      read:
        - reader
"""


def test_variables_across_steps(project, run, executor):
    root = project(VARS)
    result = run(root, executor, "--json")
    assert result.returncode == 0, result.output
    assert out(root, "writer.json") == {
        "a": 1,
        "b": {"x": [1, 2]},
        "a_in": True,
        "keys": ["a", "b"],
    }
    assert out(root, "storage_writer.json") == {"same": True, "c": "via-storage"}
    data = out(root, "reader.json")
    assert data["a"] == 1
    assert data["b"] == {"x": [1, 2]}
    assert data["c_in"] is True and data["c"] == "via-storage"
    assert data["keys"] == ["a", "b", "c"]
    assert data["lost_in"] is False  # the tolerated failure's write was discarded
    assert data["default"] == "dflt"
    assert "'missing'" in data["key_error"]
    for name in ("a", "b", "c"):
        assert name in data["key_error"]
    for label in ("update", "setitem", "get"):
        assert data["invalid_" + label].startswith("ValueError"), data
    tasks = tasks_by_name(summary(result))
    assert tasks["f.write.bad_writer"]["status"] == "failed"
    assert tasks["f.write.bad_writer"]["tolerated"] is True
    # persisted under the run's state folder; nothing left staged
    run_dir = root / ".normandy" / "runs" / summary(result)["run_id"]
    assert sorted(p.name for p in (run_dir / "vars" / "f").glob("*.nv")) == ["a.nv", "b.nv", "c.nv"]
    assert not list((run_dir / "staging").rglob("*.nv"))


def test_variables_storage_from_the_top_level_package(project, run, executor):
    root = project(
        """
  f:
    tags: [default]
    steps:
      write: [top_level_storage]
      read:
        - show_var: {params: {name: d}}
"""
    )
    result = run(root, executor)
    assert result.returncode == 0, result.output
    assert out(root, "var-d.json") == {"value": "via-top-level"}


def test_two_tasks_writing_one_name_fail_the_run(project, run, executor):
    root = project(
        """
  f:
    tags: [default]
    steps:
      s: [clash1, clash2]
      after: [mark]
"""
    )
    result = run(root, executor, "--json")
    assert result.returncode == 1, result.output
    assert "f.s.clash1" in result.stderr and "f.s.clash2" in result.stderr
    conflict = next(line for line in result.stderr.splitlines() if "'shared'" in line)
    assert "f.s.clash1" in conflict and "f.s.clash2" in conflict, conflict
    tasks = tasks_by_name(summary(result))
    statuses = sorted(tasks[f"f.s.clash{i}"]["status"] for i in (1, 2))
    assert statuses == ["failed", "succeeded"]
    failed = next(
        tasks[f"f.s.clash{i}"] for i in (1, 2) if tasks[f"f.s.clash{i}"]["status"] == "failed"
    )
    assert failed["error"]["type"] == "VariableConflict"
    assert tasks["f.after.mark"]["status"] == "not started"
    assert not (root / "out" / "mark-f.after.mark").exists()


def test_processes_of_one_step_do_not_see_each_others_writes(project, run, executor):
    root = project(
        """
  f:
    tags: [default]
    steps:
      s: [quick_writer, slow_reader]
"""
    )
    result = run(root, executor)
    assert result.returncode == 0, result.output
    assert out(root, "slow_reader.json") == {"early_in": False, "keys": []}


def test_iter_values_differing_only_by_slash_keep_their_writes(project, run):
    root = project(
        """
  f:
    tags: [default]
    steps:
      write:
        keyed_writer:
          iter_param: {name: which, values: [a/b, a_b]}
      read:
        show_var:
          iter_param: {name: name, values: [v_a-slash-b, v_a_b]}
"""
    )
    result = run(root, "serial")  # serial: deterministic order of the two tasks
    assert result.returncode == 0, result.output
    assert out(root, "var-v_a-slash-b.json") == {"value": "a/b"}
    assert out(root, "var-v_a_b.json") == {"value": "a_b"}


def test_large_numpy_array_between_steps(project, run, executor):
    pytest.importorskip("numpy")
    root = project(
        """
  f:
    tags: [default]
    steps:
      write: [big_writer]
      read: [big_reader]
"""
    )
    result = run(root, executor)
    assert result.returncode == 0, result.output
    assert out(root, "big.json") == {
        "type": "ndarray",
        "shape": [2_621_440],
        "dtype": "float64",
        "equal": True,
        "nbytes": 20 * 1024 * 1024,
    }


# -- failures -----------------------------------------------------------------------------

FAILING = """
  first:
    tags: [default]
    steps:
      s1:
        - mark: {params: {sleep: 0.3}}
        - boom
      s2: [mark]
  second:
    tags: [default]
    steps:
      only: [mark]
"""


def test_untolerated_failure(project, run, executor):
    root = project(FAILING)
    result = run(root, executor, "--json")
    assert result.returncode == 1, result.output
    err = result.stderr
    assert "Traceback (most recent call last)" in err
    assert "procs.py" in err
    assert "RuntimeError: boom: the process exploded" in err
    assert 'raise RuntimeError("boom: the process exploded")' in err
    marks = root / "out"
    assert (marks / "mark-first.s1.mark").exists()  # the other task of the step finished
    assert not (marks / "mark-first.s2.mark").exists()  # no later step
    assert not (marks / "mark-second.only.mark").exists()  # no following flow
    data = summary(result)
    assert data["status"] == "failed"
    tasks = tasks_by_name(data)
    assert tasks["first.s1.mark"]["status"] == "succeeded"
    assert tasks["first.s1.boom"]["status"] == "failed"
    assert tasks["first.s1.boom"]["tolerated"] is False
    assert tasks["first.s1.boom"]["error"]["type"] == "RuntimeError"
    assert tasks["first.s2.mark"]["status"] == "not started"
    assert tasks["second.only.mark"]["status"] == "not started"
    assert "--keep-going" in err


def test_keep_going_runs_the_following_flows(project, run, executor):
    root = project(FAILING)
    result = run(root, executor, "--keep-going")
    assert result.returncode == 1, result.output
    assert (root / "out" / "mark-second.only.mark").exists()
    assert not (root / "out" / "mark-first.s2.mark").exists()


def test_tolerated_failure(project, run, executor):
    root = project(FAILING.replace("- boom", "- boom: {error_tolerance: true}"))
    result = run(root, executor, "--json")
    assert result.returncode == 0, result.output
    assert "failed (tolerated)" in result.stderr
    assert "boom: the process exploded" in result.stderr
    assert (root / "out" / "mark-first.s2.mark").exists()
    assert (root / "out" / "mark-second.only.mark").exists()
    data = summary(result)
    assert data["status"] == "succeeded"
    boom = tasks_by_name(data)["first.s1.boom"]
    assert boom["status"] == "failed" and boom["tolerated"] is True


def test_json_summary(project, run, executor):
    root = project(
        """
  f:
    tags: [default]
    steps:
      s:
        - mark: {params: {sleep: 0.2}}
"""
    )
    result = run(root, executor, "--json")
    assert result.returncode == 0, result.output
    data = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert data["status"] == "succeeded"
    assert data["env"] == "dev"
    assert Path(data["logs"]).name == data["run_id"]
    [task] = data["tasks"]
    assert (task["flow"], task["step"], task["task"]) == ("f", "s", "mark")
    assert task["status"] == "succeeded"
    assert task["attempts"] == 1
    assert 0.2 <= task["duration"] < 10
    assert task["error"] is None
    # the summary table ends the run on stderr
    assert "STATUS" in result.stderr and "ATTEMPTS" in result.stderr


# -- logs ---------------------------------------------------------------------------------

TALK = """
  f:
    tags: [default]
    steps:
      s:
        talk:
          iter_param: {name: which, values: [a, b]}
"""


def _log_texts(root: Path, run_id: str) -> dict[str, str]:
    folder = root / "logs" / run_id
    return {p.name: p.read_text() for p in folder.iterdir()}


def test_log_files(project, run, executor):
    root = project(TALK)
    result = run(root, executor, "--json")
    assert result.returncode == 0, result.output
    run_id = summary(result)["run_id"]
    logs = _log_texts(root, run_id)
    assert {"run.log", "flow-f.log", "process-f.s.talk[a].log", "process-f.s.talk[b].log"} <= set(
        logs
    )
    for which in "ab":
        own = logs[f"process-f.s.talk[{which}].log"]
        other = "b" if which == "a" else "a"
        for text in (f"info from {which}", f"printed by {which}", f"warning from {which}"):
            line = next(ln for ln in own.splitlines() if text in ln)
            assert f"f.s.talk[{which}]" in line
            assert text in logs["run.log"] and text in logs["flow-f.log"]
            assert text in result.stderr  # the console
        assert f"debug from {which}" not in logs["run.log"]
        assert f"from {other}" not in own and f"by {other}" not in own


@pytest.mark.parametrize("level", ["errors", "error"])
def test_log_level_errors(project, run, executor, level):
    root = project(TALK)
    result = run(root, executor, "--log-level", level, "--json")
    assert result.returncode == 0, result.output
    logs = _log_texts(root, summary(result)["run_id"])
    for where in (result.stderr, *logs.values()):
        assert "info from a" not in where
        assert "printed by a" not in where
        assert "warning from a" not in where
    assert "error from a" in result.stderr
    assert "error from a" in logs["process-f.s.talk[a].log"]
    assert " INFO " not in result.stderr


def test_log_level_errors_applies_to_the_orchestrators_lines_in_files(project, run, executor):
    root = project(TALK)
    result = run(root, executor, "--log-level", "errors", "--json")
    assert result.returncode == 0, result.output
    logs = _log_texts(root, summary(result)["run_id"])
    for name, text in logs.items():
        assert " INFO " not in text, name


def test_legacy_log_level_name_warnings(project, run, executor):
    root = project(TALK)
    result = run(root, executor, "--log-level", "warnings", "--json")
    assert result.returncode == 0, result.output
    logs = _log_texts(root, summary(result)["run_id"])
    for where in (result.stderr, logs["process-f.s.talk[a].log"]):
        assert "info from a" not in where
        assert "printed by a" not in where
        assert "warning from a" in where
        assert "error from a" in where


def test_credentials_never_appear(project, run, executor):
    root = project(
        """
confs:
  plugins: [procs]
  envs:
    dev: {credentials: conf/dev_credentials.yml}
flows:
  f:
    tags: [default]
    steps:
      s: [leak]
""",
        {
            "conf/dev_credentials.yml": "db: {user: alice, password: hunter2-topsecret}\n"
            "token: tok-987654321\n"
        },
    )
    result = run(root, executor, "--json")
    assert result.returncode == 1, result.output
    secrets = ("hunter2-topsecret", "tok-987654321")
    for secret in secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr
    assert "***" in result.stderr
    assert "cannot connect with *** and ***" in result.stderr
    assert "connecting with ***" in result.stderr
    assert "password: ***" in result.stderr
    assert "login refused for ***" in result.stderr  # log.exception's traceback
    files = [
        p for folder in ("logs", ".normandy") for p in (root / folder).rglob("*") if p.is_file()
    ]
    assert any(p.name == "run.log" for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, path
    run_log = next(p for p in files if p.name == "run.log").read_text()
    assert "connecting with ***" in run_log


def test_retries(project, run, executor):
    root = project(
        """
  f:
    tags: [default]
    steps:
      s:
        flaky: {retries: 2, retry_delay: 0.1}
      after:
        - show_var: {params: {name: flaky_attempt}}
"""
    )
    result = run(root, executor, "--json")
    assert result.returncode == 0, result.output
    tasks = tasks_by_name(summary(result))
    assert tasks["f.s.flaky"]["status"] == "succeeded"
    assert tasks["f.s.flaky"]["attempts"] == 3
    assert "attempt 1 failed" in result.stderr
    # only the successful attempt's write was committed
    assert out(root, "var-flaky_attempt.json") == {"value": 3}


def test_retries_exhausted(project, run, executor):
    root = project(
        """
  f:
    tags: [default]
    steps:
      s:
        always_fails: {retries: 1}
"""
    )
    result = run(root, executor, "--json")
    assert result.returncode == 1, result.output
    task = tasks_by_name(summary(result))["f.s.always_fails"]
    assert task["status"] == "failed"
    assert task["attempts"] == 2


# -- the original example (SPEC appendix A) -----------------------------------------------


@pytest.mark.parametrize(
    ("args", "files"),
    [
        pytest.param((), {"sample_process.csv"}, id="no-tags"),
        pytest.param(
            ("--tags", "process", "--tags", "add_info"),
            {"sample_process.csv", "data_extra.csv"},
            id="process+add_info",
        ),
        pytest.param(
            ("--tags", "complete"), {"sample_process.csv", "data_extra.csv"}, id="complete"
        ),
        pytest.param(
            ("--tags", "complete", "--tags", "all"),
            {"sample_process.csv", "data_extra.csv"},
            id="complete+all",
        ),
        pytest.param(
            ("--flow", "complete", "--tags", "all"), {"data_extra.csv"}, id="flow-complete+all"
        ),
    ],
)
def test_original_example(
    normandy, original_project: Path, executor, executor_args, args, files
):
    result = normandy("run", *executor_args(executor), "--json", *args, cwd=original_project)
    assert result.returncode == 0, result.output
    written = original_project / "processed_dev"
    assert {p.name for p in written.iterdir()} == files
    assert not (original_project / "processed").exists()
    if "data_extra.csv" in files:
        lines = (written / "data_extra.csv").read_text().splitlines()
        assert len(lines) == 1 + 8
    if args == ("--tags", "complete", "--tags", "all"):
        flows = {(t["flow"], t["task"]) for t in summary(result)["tasks"]}
        assert ("complete", "process_data") not in flows
        assert {f for f, _ in flows} == {"main", "add_info", "complete"}


def test_original_example_errors(normandy, original_project: Path, executor, executor_args):
    result = normandy(
        "run", *executor_args(executor), "--json", "--tags", "errors", cwd=original_project
    )
    assert result.returncode == 1, result.output
    tasks = tasks_by_name(summary(result))
    assert tasks["error_treatment.read.read_file_with_err"]["status"] == "failed"
    never = tasks["error_treatment.process.process_data_with_err"]
    assert never["status"] == "not started" and never["attempts"] == 0
    assert "this process always fails" not in result.stderr
    assert "FileNotFoundError: raw_dev/missing.csv" in result.stderr


def test_original_command_line(normandy, original_project: Path, executor, executor_args):
    result = normandy(
        "--run-pipeline",
        "-tags",
        "complete",
        "-env",
        "prod",
        "-threads",
        "2",
        "--executor",
        executor,
        cwd=original_project,
    )
    assert result.returncode == 0, result.output
    assert "deprecated" in result.stderr
    assert "normandy run --tags complete --env prod --workers 2" in result.stderr
    written = original_project / "processed"
    assert {p.name for p in written.iterdir()} == {"sample_process.csv", "data_extra.csv"}
    assert not (original_project / "processed_dev").exists()


def test_unknown_executor(normandy, original_project: Path):
    result = normandy("run", "--executor", "nope", cwd=original_project)
    assert result.returncode == 2, result.output
    assert "unknown executor 'nope'" in result.stderr
    assert "local" in result.stderr and "serial" in result.stderr
    assert "Traceback" not in result.output
    assert not (original_project / "logs").exists()
    assert not (original_project / "processed_dev").exists()


def test_the_collector_is_tuned_for_the_run_and_put_back_after():
    """``normandy run`` freezes what it imported and collects less often while its run
    goes on; a caller running the command in its own process (tests, a notebook) gets
    its collector back as it was, whatever ended the run."""
    import gc

    from normandy_cli.commands.run import _collector_tuned

    before = gc.get_threshold()
    with pytest.raises(KeyboardInterrupt), _collector_tuned():
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == 20_000
        raise KeyboardInterrupt
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
