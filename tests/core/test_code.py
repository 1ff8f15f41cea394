"""What of a module's source a process's code fingerprint covers (SPEC 13): its own
function and everything the module shares, never the other processes beside it. A change
missed here is a stale result served, so every way the code can change has a case."""

from __future__ import annotations

import importlib
import textwrap
import uuid
from pathlib import Path

import pytest

from normandy_core import code
from normandy_core.code import code_hash, code_of
from normandy_core.fingerprint import Code, Fingerprint, verify

MODULE = """
import json
from pathlib import Path

LIMIT = 10


def _helper(rows):
    return rows[:LIMIT]


def raw(params):
    return list(range(params["n"]))


def double(raw):
    return [2 * x for x in _helper(raw)]


def total(double):
    return sum(double)


def by_name(name):
    return globals()[name]
"""


@pytest.fixture
def module(tmp_path: Path):
    path = tmp_path / "procs.py"

    def write(text: str = MODULE) -> Path:
        path.write_text(textwrap.dedent(text))
        return path

    return write


def hashes(path: Path) -> dict[str, str]:
    return {f: code_hash(path, f) for f in ("raw", "double", "total")}


def changed(module, old: str, new: str) -> set[str]:
    before = hashes(module())
    assert old in MODULE, old
    after = hashes(module(MODULE.replace(old, new)))
    return {f for f in before if before[f] != after[f]}


def test_editing_one_process_changes_only_it(module) -> None:
    # double's parameter is named like the process raw: inside double it is the parameter
    assert changed(module, "range(params", "range(1 + params") == {"raw"}
    assert changed(module, "2 * x", "3 * x") == {"double"}
    assert changed(module, "sum(double)", "max(double)") == {"total"}


def test_comments_and_formatting_change_nothing(module) -> None:
    assert changed(module, "return sum(double)", "return sum( double )  # all") == set()
    assert changed(module, "LIMIT = 10\n", "LIMIT = 10\n\n\n# the cap\n") == set()


def test_what_the_module_shares_changes_every_process(module) -> None:
    everything = {"raw", "double", "total"}
    assert changed(module, "LIMIT = 10", "LIMIT = 11") == everything
    assert changed(module, "import json", "import json as json") == everything
    assert changed(module, "rows[:LIMIT]", "rows[:LIMIT - 1]") == everything  # helper used


def test_a_decorator_is_part_of_the_function(module) -> None:
    assert changed(module, "def total(", "@staticmethod\ndef total(") == {"total"}


def test_a_function_named_in_another_is_kept(module) -> None:
    calls = MODULE.replace("return sum(double)", "return sum(double) + len(raw({'n': 1}))")
    path = module(calls)
    before = code_hash(path, "total")
    module(calls.replace("range(params", "range(1 + params"))
    assert code_hash(path, "total") != before  # total calls raw: raw's code is total's


def test_a_name_declared_global_in_a_nested_scope_is_the_module_function(module) -> None:
    source = MODULE.replace(
        "    return sum(double)",
        "    def inner(double):\n        global raw\n        return raw\n    return sum(double)",
    )
    path = module(source)
    before = code_hash(path, "total")
    module(source.replace("range(params", "range(1 + params"))
    assert code_hash(path, "total") != before


def test_a_name_in_a_string_counts_as_used(module) -> None:
    source = MODULE + '\nDISPATCH = {"raw": "raw"}\n'
    path = module(source)
    before = code_hash(path, "double")
    module(source.replace("range(params", "range(1 + params"))
    assert code_hash(path, "double") != before


def test_a_module_that_does_not_parse_is_hashed_whole(module) -> None:
    path = module(MODULE + "\ndef broken(:\n")
    before = code_hash(path, "raw")
    module(MODULE + "\ndef broken(:\n    pass\n")
    assert code_hash(path, "raw") != before
    assert code_hash(path.with_name("missing.py"), "raw") == ""


def test_a_string_in_a_function_is_data_unless_the_function_looks_names_up(module) -> None:
    reads = MODULE.replace("return sum(double)", 'return sum(double) + len(pipe.vars["raw"])')
    path = module(reads)
    before = code_hash(path, "total")
    module(reads.replace("range(params", "range(1 + params"))
    assert code_hash(path, "total") == before  # "raw" is a variable's name there
    looks_up = MODULE.replace("return sum(double)", 'return sum(double) + globals()["raw"]()')
    module(looks_up)
    before = code_hash(path, "total")
    module(looks_up.replace("range(params", "range(1 + params"))
    assert code_hash(path, "total") != before


# -- what a module imports -------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A folder on ``sys.path`` holding modules under names unique to the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(code, "_versions", {})
    prefix = f"m{uuid.uuid4().hex[:8]}"

    def write(files: dict[str, str]) -> str:
        for name, text in files.items():
            path = tmp_path / name.replace("PKG", prefix)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).replace("PKG", prefix))
        importlib.invalidate_caches()
        return prefix

    return write


def test_a_project_module_imported_is_part_of_the_code(project) -> None:
    files = {
        "PKG/__init__.py": "",
        "PKG/procs.py": (
            "import json\nfrom . import helpers\n\ndef p(x):\n    return helpers.f(x)\n"
        ),
        "PKG/helpers.py": "from PKG.deeper import g\n\ndef f(x):\n    return g(x)\n",
        "PKG/deeper.py": "def g(x):\n    return x\n",
    }
    pkg = project(files)
    before = code_of(f"{pkg}.procs", "p")
    imports = dict(before.imports)
    assert {f"{pkg}.helpers", f"{pkg}.deeper", "python"} <= imports.keys()
    assert "json" not in imports  # the standard library: Python's version stands for it
    assert code_of(f"{pkg}.procs", "p") == before
    project({"PKG/deeper.py": "def g(x):\n    return x + 1\n"})  # two imports away
    after = code_of(f"{pkg}.procs", "p")
    assert before.changes(after) == [f"{pkg}.deeper"]
    assert before.source == after.source  # the process's own module did not change


def test_an_installed_library_counts_by_its_version(project, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(code, "_installed_roots", (str(tmp_path / "site"),))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    pkg = project(
        {
            "site/PKGlib/__init__.py": "def f(x):\n    return x\n",
            "site/PKGlib-1.0.dist-info/METADATA": "Name: PKGlib\nVersion: 1.0\n",
            "procs_PKG.py": "import PKGlib.sub\n\ndef p(x):\n    return PKGlib.f(x)\n",
        }
    )
    before = code_of(f"procs_{pkg}", "p")
    assert dict(before.imports)[f"{pkg}lib"] == "1.0"
    (tmp_path / "site" / f"{pkg}lib-1.0.dist-info").rename(
        tmp_path / "site" / f"{pkg}lib-2.0.dist-info"
    )
    project({"site/PKGlib-2.0.dist-info/METADATA": "Name: PKGlib\nVersion: 2.0\n"})
    monkeypatch.setattr(code, "_versions", {})  # a new run of the command
    after = code_of(f"procs_{pkg}", "p")
    assert before.changes(after) == [f"{pkg}lib"]


def test_a_fingerprint_says_which_code_changed() -> None:
    then = Fingerprint(Code("procs", "a", "", (("helpers", "1"), ("python", "3.11.4"))), {}, "", "")
    now = Fingerprint(Code("procs", "a", "", (("helpers", "2"), ("python", "3.11.5"))), {}, "", "")
    assert verify(then, now, lambda name: None, list) == [
        "code changed (helpers)",
        "code changed (python)",
    ]
    assert Fingerprint.from_dict(then.to_dict()) == then
