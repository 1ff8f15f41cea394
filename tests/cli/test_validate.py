"""``normandy validate`` end to end: each kind of mistake, with its exact position."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import normandy_command

GOOD = """
confs:
  plugins: [procs]
  envs:
    dev: {root: data}
    prod: {root: "${env:PROD_ROOT}"}
flows:
  main:
    tags: [default]
    steps:
      extract: [extract]
      load: [load]
"""

PROCS = {
    "procs.py": """
        from normandy_core import hookimpl

        def extract(pipe, log):
            pass

        def load(params):
            pass

        def needs_more(pipe, table):
            pass

        @hookimpl
        def normandy_processes():
            return {"extract": extract, "load": load, "needs_more": needs_more,
                    "broken": "procs_missing_module:run"}
    """
}


def test_valid_project(normandy, make_project):
    root = make_project(GOOD, PROCS)
    result = normandy("validate", cwd=root)
    assert result.returncode == 0, result.output
    assert "ok — 1 flow, 2 processes checked, env dev" in result.stderr


def test_original_example_is_valid(normandy, original_project: Path):
    result = normandy("validate", cwd=original_project)
    assert result.returncode == 0, result.output
    assert "4 flows, 6 processes" in result.stderr


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        pytest.param(
            "confs:\n  envs: {dev: {}}\nflows:\n  main:\n    steps:\n      a: [extract\n",
            "pipeline/pipeline_conf.yml:7:1: YAML syntax error",
            id="yaml-syntax",
        ),
        pytest.param(
            "confs:\n  envs: {dev: {}}\n  envs: {prod: {}}\nflows: {}\n",
            "pipeline/pipeline_conf.yml:3:3: confs.envs: duplicate key 'envs'",
            id="duplicate-key",
        ),
        pytest.param(
            GOOD.replace("plugins: [procs]", "plugins: [procs]\n  wrokers: 2"),
            "pipeline/pipeline_conf.yml:3:3: confs.wrokers: unknown key 'wrokers'; did you mean "
            "'workers'?",
            id="unknown-key",
        ),
        pytest.param(
            GOOD.replace("tags: [default]", "tags: [default]\n    params: [1, 2]"),
            "pipeline/pipeline_conf.yml:9:13: flows.main.params: must be a mapping, not a list",
            id="wrong-type",
        ),
        pytest.param(
            GOOD.replace("extract: [extract]", "extract: [extrct]"),
            "pipeline/pipeline_conf.yml:10:17: flows.main.steps.extract[0]: unknown process "
            "'extrct'; did you mean 'extract'?",
            id="unknown-process",
        ),
        pytest.param(
            GOOD.replace("load: [load]", "load:\n        needs_more:"),
            "pipeline/pipeline_conf.yml:12:9: flows.main.steps.load.needs_more: process "
            "'needs_more' takes 'table', which no step of flow 'main' before 'load' outputs",
            id="missing-input",
        ),
        pytest.param(
            GOOD.replace("load: [load]", "load: [broken]"),
            "pipeline/pipeline_conf.yml:11:14: flows.main.steps.load[0]: cannot import process "
            "'broken' (procs_missing_module:run, from procs): ModuleNotFoundError",
            id="import-error",
        ),
        pytest.param(
            GOOD.replace("load: [load]", "load:\n        - load: {iter_param: {name: x}}"),
            "pipeline/pipeline_conf.yml:12:18: flows.main.steps.load[0].load.iter_param.values: "
            "missing required key 'values'",
            id="iter-param-without-values",
        ),
        pytest.param(
            GOOD.replace("dev: {root: data}", "dev: {credentials: conf/dev.yml}"),
            "pipeline/pipeline_conf.yml:4:24: confs.envs.dev.credentials: credentials file "
            "conf/dev.yml does not exist",
            id="missing-credentials",
        ),
        pytest.param(
            GOOD.replace("dev: {root: data}", "dev: {root: '${env:NORMANDY_TEST_UNSET}'}"),
            "pipeline/pipeline_conf.yml:4:17: confs.envs.dev.root: environment variable "
            "NORMANDY_TEST_UNSET is not set",
            id="missing-env-variable",
        ),
        pytest.param(
            GOOD.replace("extract: [extract]", "extract: [extract, extract]"),
            "pipeline/pipeline_conf.yml:10:26: flows.main.steps.extract[1]: task 'extract' "
            "appears twice in step 'extract'",
            id="process-twice",
        ),
        pytest.param(
            "confs:\n  envs: {dev: {}}\nflows:\n  main:\n    steps:\n"
            "      a: !!python/object/apply:os.system [ls]\n",
            "pipeline/pipeline_conf.yml:6:10: flows.main.steps.a: YAML tag "
            "!!python/object/apply:os.system is not allowed",
            id="python-tag",
        ),
        pytest.param(
            GOOD.replace("extract: [extract]", "extract: [extract]  # a form feed \x0c"),
            "pipeline/pipeline_conf.yml:10:41: control character U+000C (form feed) is not "
            'allowed in YAML; delete it (inside double quotes, write it as "\\x0c")',
            id="control-character",
        ),
        pytest.param(
            GOOD.replace("    tags: [default]", "\ttags: [default]"),
            "pipeline/pipeline_conf.yml:8:1: YAML syntax error: a tab character here: YAML "
            "indents with spaces only; replace it with spaces",
            id="tab",
        ),
        pytest.param(
            # the parser reads 'extract' and the items below it as one text, and stops at
            # the next ':', four lines below
            GOOD.replace("extract: [extract]", "extract\n        - a\n        - b\n        - c"),
            "pipeline/pipeline_conf.yml:10:14: YAML syntax error: missing ':' after 'extract'? "
            "(the parser stopped at line 14, column 11: mapping values are not allowed in "
            "this context)",
            id="missing-colon",
        ),
        pytest.param(
            GOOD.replace("load: [load]", "load:\n        load:\n        params: {table: t}"),
            "pipeline/pipeline_conf.yml:13:9: flows.main.steps.load.params: unknown process "
            "'params': 'params' is an option of a process entry, so it looks indented one "
            "level too far out; indent it under the process it belongs to",
            id="option-indented-too-far-out",
        ),
        pytest.param(
            GOOD.replace("load: [load]", "load:\n        - load:\n          retries: 2"),
            "pipeline/pipeline_conf.yml:12:11: flows.main.steps.load[0]: each item must be a "
            "process name, or a one-key mapping 'name: {options}'; 'retries' looks like an "
            "option of 'load': indent it under 'load', two more spaces than the name",
            id="option-indented-too-far-out-in-a-list",
        ),
        pytest.param(
            GOOD.replace("plugins: [procs]", "plugins: [procs]\n  null: 1\n  wrokers: 2"),
            "pipeline/pipeline_conf.yml:3:3: confs.None: a key here must be a name, not null; "
            "quote it or rename it",
            id="null-key",
        ),
        pytest.param(
            GOOD.replace("tags: [default]", "tags: [default]\n    params: {x: " + "[" * 100_000)
            + "]" * 100_000,
            "pipeline/pipeline_conf.yml:9:113: the data nests deeper than 100 levels; flatten it",
            id="deep-nesting",
        ),
        pytest.param(
            GOOD.replace("dev: {root: data}", "dev: {root: '${env:}'}"),
            "pipeline/pipeline_conf.yml:4:17: confs.envs.dev.root: malformed reference "
            "'${env:}'; write ${env:NAME} or ${env:NAME:default}, NAME made of letters, "
            "digits and '_' (not starting with a digit)",
            id="empty-env-reference",
        ),
        pytest.param(
            GOOD.replace("plugins: [procs]", "plugins: [procs]\n  store: 'data/${env:A B}'"),
            "pipeline/pipeline_conf.yml:3:10: confs.store: malformed reference '${env:A B}'",
            id="env-reference-with-a-space",
        ),
        pytest.param(
            GOOD.replace("dev: {root: data}", "dev: {credentials: '${env:CREDS'}"),
            "pipeline/pipeline_conf.yml:4:24: confs.envs.dev.credentials: malformed reference "
            "'${env:CREDS'",
            id="unclosed-env-reference",
        ),
    ],
)
def test_each_mistake_has_its_position(normandy, make_project, conf, expected):
    root = make_project(conf, PROCS)
    result = normandy("validate", cwd=root)
    assert result.returncode == 2, result.output
    assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert "nothing was run" in result.stderr


def test_every_problem_at_once(normandy, make_project):
    conf = (
        GOOD.replace("plugins: [procs]", "plugins: [procs]\n  log_level: loud")
        .replace("extract: [extract]", "extract: [extrct]")
        .replace("load: [load]", "load:")
    )
    root = make_project(conf, PROCS)
    result = normandy("validate", cwd=root)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("pipeline/")]
    assert len(lines) == 3, result.stderr
    assert "confs.log_level: must be one of" in lines[0]
    assert "unknown process 'extrct'" in lines[1]
    assert "step 'load' has no processes" in lines[2]
    assert "3 problems" in result.stderr


def test_unknown_env_lists_envs(normandy, make_project):
    root = make_project(GOOD, PROCS)
    result = normandy("validate", "--env", "staging", cwd=root)
    assert result.returncode == 2
    assert "unknown env 'staging' (from --env); the envs are: dev, prod" in result.stderr


def test_env_variable_interpolated_only_for_the_env_used(normandy, make_project):
    root = make_project(GOOD, PROCS)
    assert normandy("validate", cwd=root).returncode == 0
    result = normandy("validate", "--env", "prod", cwd=root)
    assert result.returncode == 2
    assert "PROD_ROOT is not set" in result.stderr
    result = normandy("validate", "--env", "prod", cwd=root, env={"PROD_ROOT": "/data"})
    assert result.returncode == 0, result.output


def test_credentials_problems_never_quote_values(normandy, make_project):
    root = make_project(
        GOOD.replace("dev: {root: data}", "dev: {credentials: conf/dev.yml}"),
        {**PROCS, "conf/dev.yml": 'password: "hunter2-secret"\npassword: "other-secret"\n'},
    )
    result = normandy("validate", cwd=root)
    assert result.returncode == 2
    assert "conf/dev.yml:2:1: password: duplicate key 'password'" in result.stderr
    assert "secret" not in result.output


def test_credentials_must_be_a_mapping(normandy, make_project):
    root = make_project(
        GOOD.replace("dev: {root: data}", "dev: {credentials: conf/dev.yml}"),
        {**PROCS, "conf/dev.yml": "- a\n- b\n"},
    )
    result = normandy("validate", cwd=root)
    assert result.returncode == 2
    assert "conf/dev.yml:1:1: a credentials file must be a YAML mapping" in result.stderr


def test_signatures_checked_only_for_selected_flows(normandy, make_project):
    conf = GOOD + "  other:\n    tags: [other]\n    steps:\n      s: [needs_more]\n"
    root = make_project(conf, PROCS)
    assert normandy("validate", "--tags", "default", cwd=root).returncode == 0
    result = normandy("validate", cwd=root)
    assert result.returncode == 2
    assert "process 'needs_more' takes 'table', which no step" in result.stderr


def test_project_plugin_that_fails_to_import(normandy, make_project):
    root = make_project(GOOD, {"procs.py": "raise RuntimeError('boom at import')\n"})
    result = normandy("validate", cwd=root)
    assert result.returncode == 2
    assert (
        "pipeline/pipeline_conf.yml:2:13: confs.plugins[0]: error importing project plugin "
        "'procs' (listed in confs.plugins): RuntimeError: boom at import"
    ) in result.stderr


def test_a_billion_laughs_is_refused_at_once(make_project):
    # 596 bytes that expand to a billion values; before, nine levels ran out of memory
    laughs = ["      a0: &a0 [lol]"] + [
        f"      a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)
    ]
    root = make_project(GOOD.replace("tags: [default]", "params:\n" + "\n".join(laughs)), PROCS)
    result = _run_limited(["validate"], root)
    assert result.returncode == 2, result.stderr[-2000:]
    assert (
        "pipeline/pipeline_conf.yml:15:11: flows.main.params.a6: this value would expand to "
        "2,111,111 values through its aliases, more than the 1,000,000 allowed: each alias "
        "(*name) stands for a full copy of its anchor (&name), so aliases of aliases "
        "multiply; write the values out, or nest fewer aliases"
    ) in result.stderr
    assert "Traceback" not in result.stderr
    assert "1 problem in the configuration" in result.stderr


def _run_limited(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``normandy *args`` with its memory capped at 2 GiB: should a bound on YAML aliases
    ever go, the test fails with a MemoryError instead of filling the machine's memory."""
    limit = 2 * 1024**3

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

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


def test_control_characters_in_credentials_are_positioned_never_quoted(normandy, make_project):
    root = make_project(
        GOOD.replace("dev: {root: data}", "dev: {credentials: conf/dev.yml}"),
        {**PROCS, "conf/dev.yml": "user: me  # \x1b[2J\npassword: 'hunter2-secret\x7f'\n"},
    )
    result = normandy("validate", cwd=root)
    assert result.returncode == 2, result.output
    assert "conf/dev.yml:1:13: control character U+001B (escape) is not allowed" in result.stderr
    assert "conf/dev.yml:2:26: control character U+007F (delete) is not allowed" in result.stderr
    assert "secret" not in result.output
    assert "Traceback" not in result.output


def test_a_malformed_reference_in_credentials_is_positioned_never_quoted(normandy, make_project):
    root = make_project(
        GOOD.replace("dev: {root: data}", "dev: {credentials: conf/dev.yml}"),
        {**PROCS, "conf/dev.yml": "user: me\npassword: ${env:hunter2 secret}\n"},
    )
    result = normandy("validate", cwd=root)
    assert result.returncode == 2, result.output
    assert (
        "conf/dev.yml:2:11: password: a malformed ${env:…} reference; write ${env:NAME} or "
        "${env:NAME:default}"
    ) in result.stderr
    assert "secret" not in result.output


def test_a_credentials_path_that_is_a_folder(normandy, make_project):
    root = make_project(
        GOOD.replace("dev: {root: data}", "dev: {credentials: conf}"),
        {**PROCS, "conf/dev.yml": "user: me\n"},
    )
    result = normandy("validate", cwd=root)
    assert result.returncode == 2, result.output
    assert (
        "pipeline/pipeline_conf.yml:4:24: confs.envs.dev.credentials: credentials path conf is "
        "a folder; give the path of a YAML file (a mapping of names to values)"
    ) in result.stderr


@pytest.mark.parametrize(
    ("credentials", "locked", "expected"),
    [
        (
            "conf/dev.yml",
            "conf/dev.yml",
            "conf/dev.yml:1:1: cannot read the file: permission denied; let the user running "
            "normandy read it (chmod u+r conf/dev.yml)",
        ),
        (
            "conf/dev.yml",
            "conf",
            "pipeline/pipeline_conf.yml:4:24: confs.envs.dev.credentials: credentials file "
            "conf/dev.yml cannot be reached: a folder on its path does not let the user running "
            "normandy in; change that folder's permissions",
        ),
    ],
    ids=["file", "folder"],
)
def test_credentials_that_cannot_be_read(make_project, credentials, locked, expected):
    root = make_project(
        GOOD.replace("dev: {root: data}", f"dev: {{credentials: {credentials}}}"),
        {**PROCS, "conf/dev.yml": "user: me\n"},
    )
    (root / locked).chmod(0)
    try:
        result = subprocess.run(
            [*_without_root_powers(), *normandy_command(), "validate"],
            cwd=root,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        (root / locked).chmod(0o700)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def _without_root_powers() -> list[str]:
    """A command prefix under which file permissions apply: nothing for a user; for root
    (who reads any file), ``setpriv`` dropping the capabilities that let it."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root reads any file, and setpriv is missing to take that power away")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


# -- importing the process modules (issue 16) ---------------------------------------------------

IMPORTS = """
confs:
  processes: {one: "mod_a:run", two: "mod_b:run", three: "mod_b:other"}
  envs: {dev: {}}
flows:
  main:
    tags: [default]
    steps:
      first: [one, two]
      second: [three]
"""

NOTED = """
import os
from pathlib import Path

with open(Path(__file__).resolve().parent / "imports.txt", "a") as noted:
    noted.write(f"{__name__} {os.getpid()} {os.getppid()}\\n")


def run():
    pass


def other():
    pass
"""


def test_validate_imports_each_module_once_outside_its_own_process(normandy, make_project):
    root = make_project(IMPORTS, {"mod_a.py": NOTED, "mod_b.py": NOTED})
    result = normandy("validate", cwd=root)
    assert result.returncode == 0, result.output
    lines = [line.split() for line in (root / "imports.txt").read_text().splitlines()]
    assert sorted(name for name, _, _ in lines) == ["mod_a", "mod_b"]  # each once
    parents = {int(parent) for _, _, parent in lines}
    if (os.cpu_count() or 1) > 1:  # side by side, in children of the normandy process
        (normandy_pid,) = parents
        assert normandy_pid != os.getpid()
        assert normandy_pid not in {int(pid) for _, pid, _ in lines}


def test_a_module_that_kills_its_importer_is_reported(normandy, make_project):
    dies = "import os\nos._exit(3)\n\ndef run():\n    pass\n\ndef other():\n    pass\n"
    root = make_project(IMPORTS, {"mod_a.py": NOTED, "mod_b.py": dies})
    result = normandy("validate", cwd=root)
    assert "exit status" in result.stderr or (os.cpu_count() or 1) == 1
    assert result.returncode == 2, result.output
    if (os.cpu_count() or 1) > 1:
        assert "importing process 'two' ended the process importing it (exit status 3)" in (
            result.stderr
        )
