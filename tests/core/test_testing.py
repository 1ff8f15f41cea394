"""The pytest plugin (SPEC 15), tested as pytest tests its own: pytester runs pytest on
generated test files — a file that passes and a file that fails — and the outcomes and
the report are checked; the fixtures are also used directly, on temporary projects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONF = """
confs:
  envs:
    dev: {{read: data/dev, credentials: conf/dev.yml}}
    prod: {{read: data/prod}}
flows:
  main:
    tags: [default]
    params: {{limit: 2, currency: EUR}}
    steps:
      load:
        {pkg}.load: {{outputs: raw_rows}}
      clean:
        {pkg}.clean:
          inputs: {{rows: raw_rows}}
          outputs: clean_rows
          params: {{keep: ok}}
      split:
        {pkg}.split: {{inputs: {{rows: clean_rows}}, outputs: [first, rest]}}
      save:
        save_a: {{process: {pkg}.save, params: {{name: a}}}}
        save_b: {{process: {pkg}.save, params: {{name: b}}}}
"""

PROCESSES = '''
import logging
import os
import sys

logger = logging.getLogger(__name__)


def load(pipe):
    return [{"ok": 1, "env": pipe.env}, {"ok": 0}, {"ok": 2}, {"ok": 3}]


def clean(rows, params, log, pipe):
    log.info("cleaning %d rows for token %s", len(rows), pipe.credentials["token"])
    logger.warning("a module logger, %s", pipe.confs["read"])
    print("printed with", pipe.credentials["token"])
    print("an error line", file=sys.stderr)
    os.system("echo from a subprocess")
    return [r for r in rows if r.get(params["keep"])][: params["limit"]]


def split(rows):
    return rows[:1], rows[1:]


def save(pipe, params, log):
    log.info("saving %s", params["name"])
    pipe.vars["saved_" + params["name"]] = params["name"]


def boom(log, params):
    log.info("line %d before the error", 1)
    for i in range(30):
        log.debug("detail %d", i)
    raise ValueError("bad row " + str(params.get("row", 3)))
'''


def write_project(root: Path, pkg: str) -> Path:
    """A project that is its own package of processes (``pkg.*``), not installed."""
    files = {
        "pipeline/pipeline_conf.yml": CONF.format(pkg=pkg),
        "setup.cfg": textwrap.dedent(
            f"""
            [metadata]
            name = {pkg}
            [options.entry_points]
            normandy.processes =
            """
        )
        + "".join(
            f"    {pkg}.{n} = {pkg}.processes:{n}\n"
            for n in ("load", "clean", "split", "save", "boom")
        ),
        f"src/{pkg}/__init__.py": "",
        f"src/{pkg}/processes.py": PROCESSES,
        "conf/dev.yml": "token: s3cr3t-t0ken\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text.lstrip("\n"))
    return root


def unique() -> str:
    """A package name of its own: processes are imported once per session, by target."""
    return f"pkg_{uuid.uuid4().hex[:8]}"


PASSING = """
from normandy_core.testing import ProcessResult

ROWS = [{{"ok": 1}}, {{"ok": 0}}, {{"ok": 2}}, {{"ok": 3}}]

def test_inputs_outputs_and_params_of_its_entry(run_process):
    result = run_process("{pkg}.clean", inputs={{"raw_rows": ROWS}})
    assert isinstance(result, ProcessResult) and result.ok
    assert result.outputs["clean_rows"] == [{{"ok": 1}}, {{"ok": 2}}]   # limit: 2, the flow's
    assert result.value == result.outputs["clean_rows"]
    assert result.entry == "main.clean.clean"

def test_log_and_output_captured_and_masked(run_process):
    result = run_process("{pkg}.clean", inputs={{"raw_rows": ROWS}})
    assert result.messages == ["cleaning 4 rows for token ***", "a module logger, data/dev"]
    assert [r.levelname for r in result.records] == ["INFO", "WARNING"]
    assert result.stdout == "printed with ***\\nfrom a subprocess\\n"
    assert result.stderr == "an error line\\n"
    assert "s3cr3t" not in result.log

def test_params_env_confs_and_fake_credentials(run_process):
    result = run_process(
        "{pkg}.clean", inputs={{"raw_rows": ROWS}}, params={{"limit": 1}}, env="prod",
        confs={{"read": "elsewhere"}}, credentials={{"token": "fake-token"}},
    )
    assert result.outputs["clean_rows"] == [{{"ok": 1}}]
    assert result.messages == ["cleaning 4 rows for token ***", "a module logger, elsewhere"]

def test_a_sequence_of_outputs(run_process):
    result = run_process("{pkg}.split", inputs={{"clean_rows": [1, 2, 3]}})
    assert dict(result.outputs) == {{"first": [1], "rest": [2, 3]}}

def test_pipe_vars_writes_and_a_chosen_entry(run_process):
    result = run_process("{pkg}.save", entry="main.save.save_b")
    assert result.outputs == {{"saved_b": "b"}} and result.messages == ["saving b"]

def test_a_failure_is_returned_not_raised(run_process):
    result = run_process("{pkg}.boom", params={{"row": 7}})
    assert not result.ok and isinstance(result.error, ValueError)
    assert str(result.error) == "bad row 7"
    assert result.traceback.endswith("ValueError: bad row 7\\n")
    assert result.outputs == {{}}

def test_a_missing_input_fails_as_in_a_run(run_process):
    result = run_process("{pkg}.clean", inputs={{"rows": ROWS}})   # the entry maps raw_rows
    # said as a test gives inputs (by variable), not "no earlier step of the flow wrote it"
    assert str(result.error) == (
        "its input 'rows' (variable 'raw_rows') does not exist: give it in the test, "
        "inputs={{'raw_rows': …}}: inputs= names variables, and entry main.clean.clean maps "
        "parameter 'rows' to variable 'raw_rows' (inputs: {{rows: raw_rows}}); 'rows' was "
        "given, the parameter's name"
    )
    assert "no earlier step" not in result.traceback
"""


def test_a_passing_test_file(pytester: pytest.Pytester) -> None:
    pkg = unique()
    write_project(pytester.path, pkg)
    pytester.makepyfile(**{"tests/test_processes": PASSING.format(pkg=pkg)})
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=7)


FAILING = """
def test_a_wrong_expected_output(run_process):
    result = run_process("{pkg}.clean", inputs={{"raw_rows": [{{"ok": 1}}, {{"ok": 2}}]}})
    assert result.outputs["clean_rows"] == [{{"ok": 1}}]

def test_an_output_of_a_process_that_failed(run_process):
    assert run_process("{pkg}.boom").outputs["anything"] == 1

def test_check_raises_with_the_error_and_the_log(run_process):
    run_process("{pkg}.boom", params={{"row": 9}}).check()

def test_a_return_no_entry_stores(run_process):
    assert run_process("{pkg}.clean", inputs={{"rows": [{{"ok": 1}}]}}, entry=None,
                       project="{bare}", params={{"keep": "ok", "limit": 1}},
                       credentials={{"token": "t"}}, confs={{"read": "r"}}).outputs["clean_rows"]
"""


def test_a_failing_test_file_shows_the_process_log_and_error(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pkg = unique()
    write_project(pytester.path, pkg)
    bare = tmp_path / "bare"
    bare.mkdir()
    pytester.makepyfile(**{"tests/test_processes": FAILING.format(pkg=pkg, bare=bare)})
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(
        [
            "*assert [[]{'ok': 1}, {'ok': 2}[]] == [[]{'ok': 1}[]]",
            f"*normandy: process {pkg}.clean*",
            f"process '{pkg}.clean' (entry main.clean.clean) succeeded",
            "log:",
            "  INFO     cleaning 2 rows for token ***",
            "  WARNING  a module logger, data/dev",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            f"*MissingOutput: process '{pkg}.boom' has no output 'anything': it failed "
            "(ValueError: bad row 3)*",
            f"*normandy: process {pkg}.boom*",
            f"process '{pkg}.boom' failed",
            "Traceback (most recent call last):",
            "*ValueError: bad row 3",
            "log:",
            "  INFO     line 1 before the error",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*ProcessFailed: process '*.boom' failed", "*ValueError: bad row 9"]
    )
    result.stdout.fnmatch_lines(
        [
            f"*MissingOutput: process '{pkg}.clean' has no output 'clean_rows'; its outputs: "
            "none; it returned list [[]{'ok': 1}[]], which only an entry's `outputs:` stores*"
        ]
    )
    assert "s3cr3t" not in result.stdout.str()


def test_errors_of_the_test_itself_are_raised(run_process, tmp_path: Path) -> None:
    from normandy_core.errors import ConfigError, RegistryError

    pkg = unique()
    root = write_project(tmp_path / "p", pkg)
    with pytest.raises(RegistryError, match=rf"unknown process '{pkg}.clan'; did you mean "):
        run_process(f"{pkg}.clan", project=root)
    with pytest.raises(RegistryError, match=rf"no entry 'main.save.x' runs process '{pkg}.save'.*"
                       rf"its entries: main.save.save_a, main.save.save_b"):
        run_process(f"{pkg}.save", project=root, entry="main.save.x")
    with pytest.raises(ConfigError, match="unknown env 'qa'"):
        run_process(f"{pkg}.load", project=root, env="qa")
    (root / "conf" / "dev.yml").unlink()
    with pytest.raises(ConfigError, match="credentials file .*conf/dev.yml does not exist"):
        run_process(f"{pkg}.load", project=root)
    assert run_process(f"{pkg}.load", project=root, credentials={}).ok  # fake ones instead


def test_used_by_several_entries_the_message_names_them(run_process, tmp_path: Path) -> None:
    pkg = unique()
    root = write_project(tmp_path / "p", pkg)
    (root / "pipeline" / "pipeline_conf.yml").write_text(
        CONF.format(pkg=pkg).replace(
            f"{pkg}.split: {{",
            f"x: {{process: {pkg}.load, outputs: other}}\n        {pkg}.split: {{",
        )
    )
    result = run_process(f"{pkg}.load", project=root)
    assert result.entry is None and result.value[0]["env"] == "dev"
    listed = "entry='main.load.*'; its entries: main.load.*, main.split.x"
    with pytest.raises(KeyError, match=listed):
        result.outputs["raw_rows"]
    chosen = run_process(f"{pkg}.load", project=root, entry="main.split.x")
    assert list(chosen.outputs) == ["other"]


def test_what_a_process_starts_ends_with_it(tmp_path: Path) -> None:
    from normandy_core.testing import ProcessRunner

    root = tmp_path / "p"
    module = unique()
    (root / "pipeline").mkdir(parents=True)
    (root / "pipeline" / "pipeline_conf.yml").write_text(
        f"confs:\n  processes: {{spawn: '{module}:spawn'}}\n  envs: {{dev: }}\n"
        "flows:\n  f: {steps: {s: [spawn]}}\n"
    )
    (root / f"{module}.py").write_text(
        "import subprocess\n"
        "def spawn():\n"
        "    return subprocess.Popen(['sleep', '60']).pid\n"
    )
    path = list(sys.path)
    run_process = ProcessRunner(tests=tmp_path)
    try:
        pid = run_process("spawn", project=root).value
        with pytest.raises(ProcessLookupError):
            for _ in range(100):  # killed, and reaped: gone
                os.kill(pid, 0)
                os.waitpid(pid, os.WNOHANG)
        assert str(root) in sys.path
    finally:
        run_process.close()
    assert sys.path == path  # the project's folder is on it only while it is used
    assert not run_process.base.exists()


PROJECT_FILE = """
def test_the_whole_flow(normandy_project):
    project = normandy_project()
    result = project.run("--param", "limit=3")
    assert result.exit_code == 0 and result.status == "succeeded"
    assert result.tasks["main.clean.clean"] == "succeeded"
    assert project.load("clean_rows") == [{{"ok": 1, "env": "dev"}}, {{"ok": 2}}, {{"ok": 3}}]

def test_a_failing_run(normandy_project):
    result = normandy_project().run("--flow", "main", "--param", "limit=nope")
    assert result.exit_code == 0
"""


def test_normandy_project_runs_a_copy_with_the_real_command(pytester: pytest.Pytester) -> None:
    pkg = unique()
    write_project(pytester.path, pkg)
    pytester.makepyfile(**{"tests/test_project": PROJECT_FILE.format(pkg=pkg)})
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*where 1 = <RunResult exit 1 (failed, failing task main.clean.clean)>.exit_code",
            "*normandy run --json --flow main --param limit=nope*",
            "normandy run --json --flow main --param limit=nope exited 1",
            "stderr*",
            "*TypeError: slice indices must be integers*",
        ]
    )
    assert not (pytester.path / ".normandy").exists()  # the runs were the copy's


TWIN_PROCESS = """
import logging

logger = logging.getLogger(__name__)


def p(pipe):
    logger.warning("module logger with token %s", pipe.credentials.get("token"))
    return "{which}"
"""

TWIN_TEST = """
from pathlib import Path


def test_{which}(run_process, caplog):
    result = run_process("{pkg}.p", credentials={{"token": "s3cr3t-t0ken"}})
    assert result.value == "{which}"
    assert "module logger with token ***" in caplog.text  # pytest's capture, masked
    assert "s3cr3t" not in caplog.text


def test_{which}_edited(run_process):
    source = Path(__file__).parents[1] / "src" / "{pkg}" / "processes.py"
    source.write_text(source.read_text().replace('"{which}"', '"Z"'))  # same size, at once
    assert run_process("{pkg}.p").value == "Z"
    source.write_text(source.read_text().replace('"Z"', '"{which}"'))
    assert run_process("{pkg}.p").value == "{which}"
"""


def test_two_projects_one_package_name_and_edits_in_one_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """projA/src/hp and projB/src/hp in one session: projB's test ran projA's code, without
    a warning; an edit during the session was not seen; module-logger records reached
    pytest's capture unmasked (issue 23)."""
    # bytecode written, as in CI: a same-size edit within its second must not load it
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    pkg = unique()
    for which in ("A", "B"):
        root = pytester.path / f"proj{which}"
        files = {
            "pipeline/pipeline_conf.yml": (
                "confs: {envs: {dev: {}}}\nflows:\n  f:\n    steps:\n"
                f"      s: {{{pkg}.p: {{outputs: out}}}}\n"
            ),
            "setup.cfg": (
                f"[metadata]\nname = {pkg}-{which}\n[options.entry_points]\n"
                f"normandy.processes =\n    {pkg}.p = {pkg}.processes:p\n"
            ),
            f"src/{pkg}/__init__.py": "",
            f"src/{pkg}/processes.py": TWIN_PROCESS.format(which=which),
            f"tests/test_{which.lower()}.py": TWIN_TEST.format(pkg=pkg, which=which),
        }
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
    result = pytester.runpytest("-p", "no:cacheprovider", "projA/tests", "projB/tests")
    result.assert_outcomes(passed=4)


def test_loading_the_plugin_imports_nothing_it_does_not_need(tmp_path: Path) -> None:
    """pytest loads the plugin in every session of an environment where Normandy is
    installed: it must not import Normandy's engine, nor anything heavy."""
    (tmp_path / "test_nothing.py").write_text(
        "import sys, json\n"
        "def test_modules():\n"
        "    print(json.dumps(sorted(m for m in sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "test_nothing.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    printed = next(line for line in proc.stdout.splitlines() if line.startswith("["))
    modules = set(json.loads(printed))
    assert "normandy_core.testing.plugin" in modules  # it was loaded, through pytest11
    ours = {m for m in modules if m.startswith(("normandy_core", "normandy_cli"))}
    assert ours == {"normandy_core", "normandy_core.testing", "normandy_core.testing.plugin"}
    heavy = {"pandas", "numpy", "pyarrow", "distributed", "typer", "ruamel", "cerberus", "rich"}
    assert not heavy & {m.split(".")[0] for m in modules}


def test_a_command_that_outlives_its_timeout_is_stopped_with_its_run(tmp_path: Path) -> None:
    """SIGTERM: the run stops its tasks and records itself interrupted; nothing is left
    behind (the autouse fixture of tests/conftest.py fails a test that leaves a process)."""
    from normandy_core.testing import NormandyProject

    root = tmp_path / "p"
    module = unique()
    (root / "pipeline").mkdir(parents=True)
    (root / "pipeline" / "pipeline_conf.yml").write_text(
        f"confs:\n  processes: {{nap: '{module}:nap'}}\n  envs: {{dev: }}\n"
        "flows:\n  f: {tags: [default], steps: {s: [nap]}}\n"
    )
    (root / f"{module}.py").write_text("import time\ndef nap():\n    time.sleep(60)\n")
    project = NormandyProject(root)
    with pytest.raises(TimeoutError, match="did not end within 3 s"):
        project.run(timeout=3)
    runs = project.command("runs", "--json")
    assert [run["status"] for run in json.loads(runs.stdout)] == ["interrupted"]


def test_an_entry_s_params_arguments_variadic_inputs_and_template(tmp_path: Path) -> None:
    """SPEC 20 in ``run_process``: what an entry maps to the arguments (params, a key path
    of them, a list spread over ``*dfs``) and a template's scope, with the env's params,
    as a run gives them."""
    from normandy_core.testing import ProcessRunner

    root = tmp_path / "p"
    module = unique()
    (root / "pipeline").mkdir(parents=True)
    (root / "pipeline" / "pipeline_conf.yml").write_text(
        f"""
confs:
  processes: {{join: '{module}:join', split: '{module}:split'}}
  envs:
    dev: {{}}
    prod: {{params: {{opts: {{size: 2}}}}}}
templates:
  t:
    steps:
      cut: {{split: {{inputs: {{rows: table, size: params.opts.size}}, outputs: [head, tail]}}}}
flows:
  f:
    params: {{opts: {{size: 1, keep: true}}}}
    steps:
      s:
        join: {{inputs: {{first: a, rest: [b, c], options: params.opts}}, outputs: table}}
      part: {{use: t, inputs: {{table: table}}}}
"""
    )
    (root / f"{module}.py").write_text(
        "def join(first, *rest, options):\n"
        "    return [first, *rest, options]\n"
        "def split(rows, size, pipe):\n"
        "    pipe.vars['seen'] = size\n"
        "    return rows[:size], rows[size:]\n"
    )
    run_process = ProcessRunner(tests=tmp_path)
    try:
        joined = run_process("join", project=root, inputs={"a": 1, "b": 2, "c": 3})
        assert joined.ok, joined.describe()
        assert joined.outputs["table"] == [1, 2, 3, {"size": 1, "keep": True}]
        prod = run_process("join", project=root, env="prod", inputs={"a": 1, "b": 2, "c": 3})
        assert prod.outputs["table"][-1] == {"size": 2, "keep": True}  # env params over
        cut = run_process("split", project=root, inputs={"table": [1, 2, 3]})
        assert cut.ok, cut.describe()
        # its variables in the use's namespace, pipe.vars' too
        assert dict(cut.outputs) == {"part.head": [1], "part.tail": [2, 3], "part.seen": 1}
    finally:
        run_process.close()
