"""A reused result is never stale (SPEC 13, issue 20), end to end with the real command.

Each hostile experiment of the issue is a task of one project, with ``cache: true``: a
first run records every task; then one thing changes for each of them at once (a
``process:`` retargeted, an ``inputs`` or ``outputs`` mapping remapped, a project module
imported by a name held in params edited, a helper reached through ``globals()`` edited, a
data file edited, an environment variable changed, a library's own dependency
upgraded…) and the second run must run each of them again and store the new value, while
what nothing touched (``control``, and the process of a module whose other process uses an
edited helper) is reused. Each case is one test over the same two runs (and a third, with
``--param``), so that the suite pays for three runs of one project.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import sqlite3
import stat
import string
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import xxhash

from normandy_core import load

PROCS = '''
"""Processes of the hostile reuse tests: each depends on one thing that changes."""

import importlib
import json
import os
from pathlib import Path

import liba

HERE = Path(__file__).resolve().parent

__all__ = ["first", "second", "make_raw", "make_clean", "count_rows", "pair", "mapping"]


def first():
    return "first"


def second():
    return "second"


def make_raw():
    return [1, 2, 3]


def make_clean():
    return [1, 2]


def count_rows(rows):
    return len(rows)


def pair():
    return (1, 2)


def mapping():
    return {"first": 1, "second": 2}


def produce():
    return 42


def consume(value):
    return value + 1


def by_module_name(params):
    return importlib.import_module(params["mod"]).VALUE


def by_literal():
    return importlib.import_module("lit_target").VALUE


def by_dunder():
    return __import__("dunder_target").VALUE


def read_rows(pipe):
    with open(pipe.path / "data" / "rows.csv") as rows:
        return rows.read()


def read_beside():
    return json.loads((HERE / "settings.json").read_text())["value"]


def read_env():
    return os.environ["NORMANDY_STALE_A"]


def read_getenv():
    return os.getenv("NORMANDY_STALE_B", "unset")


def checks_env():
    return "NORMANDY_STALE_C" in os.environ


def use_library():
    return liba.value()


def control():
    return "same"


def reads_n(params):
    return params["n"]
'''

TARGET = """
VALUE = 1


def here():
    return "here"
"""

DISPATCH_GLOBALS = """
def _helper_a():
    return 1


def by_globals(params):
    return globals()[params["fn"]]()
"""

DISPATCH_MODULES = """
import sys


def _helper_b():
    return 1


def by_getattr(params):
    return getattr(sys.modules[__name__], params["fn"])()
"""

AT_IMPORT = """
import json
from pathlib import Path

VALUE = json.loads((Path(__file__).resolve().parent / "import_config.json").read_text())["value"]


def at_import():
    return VALUE
"""

PROCS2 = """
import helpers2


def uses_helper():
    return helpers2.scale(2)


def ignores_helper():
    return "free"
"""

CONF = """
confs:
  cache: true
  workers: 2
  processes:
    pick_first: "procs:first"
    pick_second: "procs:second"
    chosen: "procs:first"
    make_raw: "procs:make_raw"
    make_clean: "procs:make_clean"
    count_rows: "procs:count_rows"
    pair: "procs:pair"
    mapping: "procs:mapping"
    produce: "procs:produce"
    consume: "procs:consume"
    by_module_name: "procs:by_module_name"
    by_literal: "procs:by_literal"
    by_dunder: "procs:by_dunder"
    read_rows: "procs:read_rows"
    read_beside: "procs:read_beside"
    read_env: "procs:read_env"
    read_getenv: "procs:read_getenv"
    checks_env: "procs:checks_env"
    use_library: "procs:use_library"
    control: "procs:control"
    reads_n: "procs:reads_n"
    dyn_here: "dyn_target:here"
    lit_here: "lit_target:here"
    dunder_here: "dunder_target:here"
    by_globals: "dispatch_g:by_globals"
    by_getattr: "dispatch_m:by_getattr"
    at_import: "confmod:at_import"
    uses_helper: "procs2:uses_helper"
    ignores_helper: "procs2:ignores_helper"
  envs:
    dev: {}
flows:
  f:
    tags: [default]
    params: {n: 1}
    steps:
      s0:
        make_raw: {outputs: raw}
        make_clean: {outputs: clean}
        produce: {outputs: old_name}
        dyn_here:
        lit_here:
        dunder_here:
      s1:
        retarget: {process: pick_first, outputs: retarget}
        renamed: {process: chosen, outputs: renamed}
        count: {process: count_rows, inputs: {rows: raw}, outputs: counted}
        picked: {process: mapping, outputs: {picked: first}}
        ordered: {process: pair, outputs: [lo, hi]}
        consume: {inputs: {value: old_name}, outputs: consumed}
        by_module_name: {params: {mod: dyn_target}, outputs: by_module_name}
        by_literal: {outputs: by_literal}
        by_dunder: {outputs: by_dunder}
        by_globals: {params: {fn: _helper_a}, outputs: by_globals}
        by_getattr: {params: {fn: _helper_b}, outputs: by_getattr}
        read_rows: {outputs: read_rows}
        read_beside: {outputs: read_beside}
        at_import: {outputs: at_import}
        read_env: {outputs: read_env}
        read_getenv: {outputs: read_getenv}
        checks_env: {outputs: checks_env}
        use_library: {outputs: use_library}
        uses_helper: {outputs: uses_helper}
        ignores_helper: {outputs: ignores_helper}
        control: {outputs: control}
        reads_n: {outputs: reads_n}
"""

FILES = {
    "procs.py": PROCS,
    "dyn_target.py": TARGET,
    "lit_target.py": TARGET,
    "dunder_target.py": TARGET,
    "dispatch_g.py": DISPATCH_GLOBALS,
    "dispatch_m.py": DISPATCH_MODULES,
    "confmod.py": AT_IMPORT,
    "import_config.json": '{"value": 1}\n',
    "settings.json": '{"value": 1}\n',
    "procs2.py": PROCS2,
    "helpers2.py": "def scale(x):\n    return 2 * x\n",
    "data/rows.csv": "id,value\n1,aaa\n",
}
LIBRARIES = {
    "liba/__init__.py": "import libb\n\n\ndef value():\n    return libb.VALUE\n",
    "liba-1.0.dist-info/METADATA": (
        "Metadata-Version: 2.1\nName: liba\nVersion: 1.0\nRequires-Dist: libb\n"
    ),
    "liba-1.0.dist-info/top_level.txt": "liba\n",
    "libb/__init__.py": "VALUE = 1\n",
    "libb-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: libb\nVersion: 1.0\n",
    "libb-1.0.dist-info/top_level.txt": "libb\n",
}
"""Installed in the site-packages of the runs' own virtual environment: liba uses libb."""

ENV = {"NO_COLOR": "1", "COLUMNS": "250"}


def edit(root: Path, file: str, old: str, new: str, *, keep_mtime: bool = False) -> None:
    """An edit as a person makes it, seconds after the run (Python trusts a module's
    bytecode while its source keeps its size and modification second); with
    ``keep_mtime``, as a tool that restores the modification time (``cp -p``, ``rsync``)."""
    path = root / file
    text = path.read_text()
    assert old in text, (file, old)
    before = path.stat()
    path.write_text(text.replace(old, new))
    when = before.st_mtime_ns if keep_mtime else before.st_mtime_ns + 2_000_000_000
    os.utime(path, ns=(when, when))


def virtualenv(where: Path) -> tuple[Path, Path]:
    """A virtual environment whose Python sees this one's packages (Normandy) and has
    its own site-packages, where libraries are installed: its python and site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    (Path(site) / "outer.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python, Path(site)


def run(python: Path, root: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    environ = {**os.environ, **ENV, **(env or {})}
    proc = subprocess.run(
        [python, "-m", "normandy_cli", "run", "--json", "--explain", *args],
        cwd=root,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout)
    summary["explained"] = dict(re.findall(r"explain: f\.\w+\.(\w+): (.*)", proc.stderr))
    summary["statuses"] = {t["task"]: t["status"] for t in summary["tasks"]}
    summary["stderr"] = proc.stderr
    return summary


def value(root: Path, name: str, run_id: str) -> Any:
    return load(name, flow="f", run=run_id, project=root)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The three runs: everything; after every change; with ``--param n=2``."""
    base = tmp_path_factory.mktemp("stale")
    python, site = virtualenv(base / "venv")
    root = base / "project"
    for folder, files in ((root, FILES), (site, LIBRARIES)):
        for rel, text in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.lstrip("\n"))
    (root / "pipeline").mkdir()
    (root / "pipeline" / "pipeline_conf.yml").write_text(CONF.lstrip())
    first = run(python, root, env={"NORMANDY_STALE_A": "1"})
    conf = "pipeline/pipeline_conf.yml"
    edit(root, conf, "process: pick_first,", "process: pick_second,")
    edit(root, conf, 'chosen: "procs:first"', 'chosen: "procs:second"')
    edit(root, conf, "inputs: {rows: raw}", "inputs: {rows: clean}")
    edit(root, conf, "outputs: {picked: first}", "outputs: {picked: second}")
    edit(root, conf, "outputs: [lo, hi]", "outputs: [hi, lo]")
    edit(root, conf, "outputs: old_name", "outputs: new_name")
    edit(root, conf, "inputs: {value: old_name}", "inputs: {value: new_name}")
    for module in ("dyn_target.py", "lit_target.py", "dunder_target.py"):
        edit(root, module, "VALUE = 1", "VALUE = 2")
    edit(root, "dispatch_g.py", "return 1", "return 2")
    edit(root, "dispatch_m.py", "return 1", "return 2")
    edit(root, "data/rows.csv", "1,aaa", "1,bbb", keep_mtime=True)
    edit(root, "settings.json", '"value": 1', '"value": 2')
    edit(root, "import_config.json", '"value": 1', '"value": 2')
    edit(root, "helpers2.py", "2 * x", "3 * x")
    edit(site, "libb/__init__.py", "VALUE = 1", "VALUE = 2")  # libb upgraded
    (site / "libb-1.0.dist-info").rename(site / "libb-2.0.dist-info")
    edit(site, "libb-2.0.dist-info/METADATA", "Version: 1.0", "Version: 2.0")
    changed = {"NORMANDY_STALE_A": "2", "NORMANDY_STALE_B": "b", "NORMANDY_STALE_C": ""}
    second = run(python, root, env=changed)
    third = run(python, root, "--param", "n=2", env=changed)
    return root, first, second, third


# (task, variable, value before, value after, why it runs again)
CASES = [
    ("retarget", "retarget", "first", "second", r"process changed \(procs:first → procs:second\)"),
    ("renamed", "renamed", "first", "second", r"process changed \(procs:first → procs:second\)"),
    ("count", "counted", 3, 2, r"inputs changed \(rows: raw → clean\)"),
    ("picked", "picked", 1, 2, r"outputs changed"),
    ("ordered", "lo", 1, 2, r"outputs changed \(\[lo, hi\] → \[hi, lo\]\)"),
    ("consume", "consumed", 43, 43, r"inputs changed \(value: old_name → new_name\)"),
    ("by_module_name", "by_module_name", 1, 2, r"code changed \(dyn_target\)"),
    ("by_literal", "by_literal", 1, 2, r"code changed \(lit_target\)"),
    ("by_dunder", "by_dunder", 1, 2, r"code changed \(dunder_target\)"),
    ("by_globals", "by_globals", 1, 2, r"code changed \(dispatch_g\)"),
    ("by_getattr", "by_getattr", 1, 2, r"code changed \(dispatch_m\)"),
    ("read_rows", "read_rows", "id,value\n1,aaa\n", "id,value\n1,bbb\n",
     r"file changed \(data/rows\.csv\)"),
    ("read_beside", "read_beside", 1, 2, r"file changed \(settings\.json\)"),
    ("at_import", "at_import", 1, 2, r"file changed \(import_config\.json\)"),
    ("read_env", "read_env", "1", "2", r"environment changed \(NORMANDY_STALE_A\)"),
    ("read_getenv", "read_getenv", "unset", "b", r"environment changed \(NORMANDY_STALE_B\)"),
    ("checks_env", "checks_env", False, True, r"environment changed \(NORMANDY_STALE_C\)"),
    ("use_library", "use_library", 1, 2, r"code changed \(libb\)"),
    ("uses_helper", "uses_helper", 4, 6, r"code changed \(helpers2\)"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_change_reruns_the_task_and_stores_the_new_value(runs, case):
    root, first, second, _ = runs
    task, variable, before, after, why = case
    assert first["statuses"][task] == "succeeded"
    assert value(root, variable, first["run_id"]) == before
    assert second["statuses"][task] == "succeeded", second["explained"][task]
    assert re.search(why, second["explained"][task]), second["explained"][task]
    assert value(root, variable, second["run_id"]) == after


def test_renaming_an_output_and_its_readers_input_makes_the_new_variable(runs):
    root, _, second, _ = runs
    assert second["statuses"]["produce"] == "succeeded"
    assert value(root, "new_name", second["run_id"]) == 42


def test_what_nothing_touched_is_reused(runs):
    _, first, second, _ = runs
    for task in ("control", "ignores_helper", "make_raw", "make_clean", "reads_n"):
        assert second["statuses"][task] == "cached", (task, second["explained"][task])
        assert second["explained"][task] == f"reuse {first['run_id']}"


def test_a_param_given_on_the_command_line_reruns_only_the_tasks_that_read_it(runs):
    root, _, second, third = runs
    ran = {task for task, status in third["statuses"].items() if status != "cached"}
    assert ran == {"reads_n"}, {t: third["explained"][t] for t in ran}
    assert third["explained"]["reads_n"] == "run (params changed (n: 1 → 2))"
    assert value(root, "reads_n", third["run_id"]) == 2


def test_a_reused_task_is_shown_cached_never_failed(runs):
    _, first, second, _ = runs
    err = second["stderr"]
    assert "FAILED" not in err and "failed" not in err.lower().replace("0 failed", "")
    for task in ("control", "ignores_helper"):
        lines = [line for line in err.splitlines() if f"f.s1.{task} " in line]
        assert lines == [lines[0]] and lines[0].endswith(
            f"f.s1.{task} cached (from {first['run_id']})"
        ), lines


# -- the dry run and the run agree -------------------------------------------------------------

MAYBE = """
def writer(pipe):
    pipe.vars["maybe"] = 1


def reader(pipe):
    return pipe.vars.get("maybe", 0)


def other():
    return 1
"""

MAYBE_CONF = """
confs:
  cache: true
  processes: {writer: "maybe:writer", reader: "maybe:reader", other: "maybe:other"}
  envs: {dev: {}}
flows:
  f:
    tags: [default]
    steps:
      one:
        other: {outputs: o}
      two:
        reader: {outputs: r}
"""


def verdicts(stderr: str) -> dict[str, str]:
    return dict(re.findall(r"f\.\w+\.(\w+): (.*)", stderr))


def test_dry_run_explain_agrees_with_the_run_or_says_why_it_cannot_know(normandy, make_project):
    root = make_project(MAYBE_CONF, {"maybe.py": MAYBE})
    assert normandy("run", cwd=root, env=ENV).returncode == 0
    conf = root / "pipeline" / "pipeline_conf.yml"
    conf.write_text(
        conf.read_text().replace("other: {outputs: o}", "other: {outputs: o}\n        writer:")
    )
    dry = normandy("run", "--dry-run", "--explain", cwd=root, env=ENV)
    assert dry.returncode == 0, dry.output
    said = verdicts(dry.stderr[dry.stderr.index("what would run") :])
    real = normandy("run", "--explain", "--json", cwd=root, env=ENV)
    assert real.returncode == 0, real.output
    done = verdicts(real.stderr)
    assert done["reader"].startswith("run (input changed (maybe))")
    assert said["reader"].startswith("run or reuse: reads maybe, which f.one.writer"), said
    for task, verdict in said.items():  # never a decision the run contradicts
        if verdict.startswith("reuse"):
            assert done[task].startswith("reuse"), (task, verdict, done[task])
        elif verdict.startswith("run ("):
            assert done[task].startswith("run ("), (task, verdict, done[task])


# -- what the history holds ----------------------------------------------------------------------

SECRETS = """
def uses(params, pipe):
    return len(params["secret"]) + len(pipe.credentials["token"])
"""

SECRETS_CONF = """
confs:
  cache: true
  processes: {uses: "creds:uses"}
  envs: {dev: {credentials: conf/dev.yml}}
flows:
  f:
    tags: [default]
    steps:
      one:
        uses: {outputs: n}
"""


def _candidates(alphabet: str, length: int):
    for letters in itertools.product(alphabet, repeat=length):
        yield "".join(letters)


def test_a_short_credential_cannot_be_recovered_from_the_history(normandy, make_project):
    root = make_project(SECRETS_CONF, {"creds.py": SECRETS, "conf/dev.yml": "token: xq7\n"})
    result = normandy("run", "--param", "secret=xq7", cwd=root, env=ENV)
    assert result.returncode == 0, result.output
    with sqlite3.connect(root / ".normandy" / "history.sqlite") as db:
        stored = " ".join(
            str(row[0]) + " " + str(row[1])
            for table in ("tasks", "attempts")
            for row in db.execute(f"SELECT fingerprint, fingerprint_parts FROM {table}")
        )
    found = set(re.findall(r"[0-9a-f]{16,}", stored))
    assert found, "no fingerprint was recorded"

    def hashes(value: Any) -> set[str]:  # what an attacker tries: the hashes of the code
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr).encode()
        return {
            xxhash.xxh3_128_hexdigest(text),
            xxhash.xxh3_64_hexdigest(text),
            hashlib.blake2b(text, digest_size=16).hexdigest(),
            hashlib.sha256(text).hexdigest(),
        }

    alphabet = string.ascii_lowercase + string.digits
    recovered = [
        word
        for word in _candidates(alphabet, 3)
        if (hashes(word) | hashes({"token": word})) & found
    ]
    assert recovered == []
    secret = root / ".normandy" / "secret"
    assert secret.exists() and stat.S_IMODE(secret.stat().st_mode) == 0o600
