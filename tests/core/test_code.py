"""What of a module's source a process's code fingerprint covers (SPEC 13): its own
function, what it reaches, and everything the module runs when imported; never the other
processes beside it, nor the helpers only they use; a module that looks names up
dynamically, whole. What that code imports, followed. A change missed here is a stale
result served, so every way the code can change has a case."""

from __future__ import annotations

import importlib
import textwrap
import uuid
from pathlib import Path

import pytest

from normandy_core import code
from normandy_core._escape import params_escape, writes_undeclared
from normandy_core._source import read_source
from normandy_core.code import code_hash, code_of, process_code

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


def changed(module, old: str, new: str, source: str = MODULE) -> set[str]:
    before = hashes(module(source))
    assert old in source, old
    after = hashes(module(source.replace(old, new)))
    return {f for f in before if before[f] != after[f]}


EVERYTHING = {"raw", "double", "total"}


def test_editing_one_process_changes_only_it(module) -> None:
    # double's parameter is named like the process raw: inside double it is the parameter
    assert changed(module, "range(params", "range(1 + params") == {"raw"}
    assert changed(module, "2 * x", "3 * x") == {"double"}
    assert changed(module, "sum(double)", "max(double)") == {"total"}


def test_comments_and_formatting_change_nothing(module) -> None:
    assert changed(module, "return sum(double)", "return sum( double )  # all") == set()
    assert changed(module, "LIMIT = 10\n", "LIMIT = 10\n\n\n# the cap\n") == set()


def test_what_the_module_runs_when_imported_changes_every_process(module) -> None:
    assert changed(module, "LIMIT = 10", "LIMIT = 11") == EVERYTHING
    assert changed(module, "import json", "import json as json") == EVERYTHING


def test_a_helper_changes_the_processes_that_reach_it(module) -> None:
    assert changed(module, "rows[:LIMIT]", "rows[:LIMIT - 1]") == {"double"}
    calls = MODULE.replace("return sum(double)", "return sum(double) + len(raw({'n': 1}))")
    assert changed(module, "range(params", "range(1 + params", calls) == {"raw", "total"}


def test_a_decorated_definition_counts_for_every_process(module) -> None:
    """A decorator may register the function where other code finds it by name."""
    decorated = MODULE.replace("def total(", "@staticmethod\ndef total(")
    assert changed(module, "sum(double)", "max(double)", decorated) == EVERYTHING


def test_a_name_declared_global_in_a_nested_scope_is_the_module_function(module) -> None:
    source = MODULE.replace(
        "    return sum(double)",
        "    def inner(double):\n        global raw\n        return raw\n    return sum(double)",
    )
    assert changed(module, "range(params", "range(1 + params", source) == {"raw", "total"}


def test_a_name_in_a_module_level_string_counts_as_used_but_not_in_all(module) -> None:
    dispatch = MODULE + '\nDISPATCH = {"raw": "raw"}\n'
    assert changed(module, "range(params", "range(1 + params", dispatch) == EVERYTHING
    exported = MODULE + '\n__all__ = ["raw", "double", "total"]\n'
    assert changed(module, "range(params", "range(1 + params", exported) == {"raw"}


def test_a_string_in_a_function_is_data(module) -> None:
    reads = MODULE.replace("return sum(double)", 'return sum(double) + len(pipe.vars["raw"])')
    assert changed(module, "range(params", "range(1 + params", reads) == {"raw"}


LOOKUPS = {
    "globals": 'globals()["raw"]',
    "vars of a module": 'vars(sys.modules[__name__])["raw"]',
    "getattr with a computed name": "getattr(sys, name)",
    "sys.modules": "sys.modules[__name__].raw",
    "__dict__": "sys.__dict__",
    "eval": 'eval("raw")',
    "exec": 'exec("x = 1")',
}


@pytest.mark.parametrize("lookup", LOOKUPS.values(), ids=LOOKUPS.keys())
def test_a_module_that_looks_names_up_dynamically_is_hashed_whole(module, lookup) -> None:
    source = "import sys\n" + MODULE + f"\n\ndef other(name):\n    return {lookup}\n"
    assert changed(module, "range(params", "range(1 + params", source) == EVERYTHING


def test_getattr_with_a_constant_name_is_an_attribute(module) -> None:
    source = MODULE.replace("return sum(double)", 'return getattr(json, "dumps")(double)')
    assert changed(module, "range(params", "range(1 + params", source) == {"raw"}


def test_a_module_that_does_not_parse_is_hashed_whole(module) -> None:
    path = module(MODULE + "\ndef broken(:\n")
    before = code_hash(path, "raw")
    module(MODULE + "\ndef broken(:\n    pass\n")
    assert code_hash(path, "raw") != before
    assert code_hash(path.with_name("missing.py"), "raw") == ""


# -- what a process's code imports --------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A folder on ``sys.path`` holding modules under names unique to the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    code.new_run()
    prefix = f"m{uuid.uuid4().hex[:8]}"

    def write(files: dict[str, str]) -> str:
        for name, text in files.items():
            path = tmp_path / name.replace("PKG", prefix)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).replace("PKG", prefix))
        importlib.invalidate_caches()
        return prefix

    yield write
    code.new_run()


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
    assert {f"{pkg}.helpers", f"{pkg}.deeper", pkg, "python"} <= imports.keys()
    assert "json" not in imports  # the standard library: Python's version stands for it
    assert code_of(f"{pkg}.procs", "p") == before
    project({"PKG/deeper.py": "def g(x):\n    return x + 1\n"})  # two imports away
    after = code_of(f"{pkg}.procs", "p")
    assert before.changes(after) == [f"{pkg}.deeper"]
    assert before.source == after.source  # the process's own module did not change


def test_only_the_imports_a_functions_code_uses_count(project) -> None:
    pkg = project(
        {
            "procs_PKG.py": (
                "import helpers_PKG\nfrom other_PKG import g\n\n"
                "def uses(x):\n    return helpers_PKG.f(x)\n\n"
                "def uses_g(x):\n    return g(x)\n\n"
                "def inside(x):\n    import late_PKG\n    return late_PKG.h(x)\n\n"
                "def literal(x):\n    import importlib\n"
                "    return importlib.import_module('lit_PKG').h(x)\n\n"
                "def free(x):\n    return x\n"
            ),
            "helpers_PKG.py": "def f(x):\n    return x\n",
            "other_PKG.py": "def g(x):\n    return x\n",
            "late_PKG.py": "def h(x):\n    return x\n",
            "lit_PKG.py": "def h(x):\n    return x\n",
        }
    )
    module = f"procs_{pkg}"
    assert process_code(module, "uses").projects == (f"helpers_{pkg}",)
    assert process_code(module, "uses_g").projects == (f"other_{pkg}",)  # g: no module
    assert process_code(module, "inside").projects == (f"late_{pkg}",)
    assert process_code(module, "literal").projects == (f"lit_{pkg}",)
    assert process_code(module, "free").projects == ()


def test_a_module_imported_by_a_computed_name_is_left_to_the_worker(project) -> None:
    pkg = project(
        {
            "procs_PKG.py": (
                "import importlib\n\ndef by_name(params):\n"
                "    return importlib.import_module(params['mod'])\n\n"
                "def free(x):\n    return x\n"
            ),
        }
    )
    source = read_source(f"procs_{pkg}", Path(code.locate(f"procs_{pkg}")[1] or ""))
    assert source is not None and not source.dynamic  # per function still
    assert (
        process_code(f"procs_{pkg}", "free").code.source
        != process_code(f"procs_{pkg}", "by_name").code.source
    )


def test_a_missing_module_it_imports_counts_once_it_appears(project) -> None:
    pkg = project(
        {
            "procs_PKG.py": (
                "try:\n    import maybe_PKG\nexcept ImportError:\n    maybe_PKG = None\n\n"
                "def p(x):\n    return maybe_PKG\n"
            )
        }
    )
    before = code_of(f"procs_{pkg}", "p")
    assert dict(before.imports)[f"maybe_{pkg}"] == "-"
    project({"maybe_PKG.py": "X = 1\n"})
    assert before.changes(code_of(f"procs_{pkg}", "p")) == [f"maybe_{pkg}"]


def test_an_installed_library_counts_by_its_version(project, tmp_path, monkeypatch) -> None:
    site = tmp_path / "site-packages"  # a folder named so on sys.path holds libraries
    monkeypatch.syspath_prepend(str(site))
    pkg = project(
        {
            "site-packages/PKGlib/__init__.py": "def f(x):\n    return x\n",
            "site-packages/PKGlib-1.0.dist-info/METADATA": "Name: PKGlib\nVersion: 1.0\n",
            "procs_PKG.py": "import PKGlib.sub\n\ndef p(x):\n    return PKGlib.f(x)\n",
        }
    )
    before = process_code(f"procs_{pkg}", "p")
    assert dict(before.code.imports)[f"{pkg}lib"] == "1.0"
    assert before.libraries == (f"{pkg}lib",)
    (site / f"{pkg}lib-1.0.dist-info").rename(site / f"{pkg}lib-2.0.dist-info")
    project({"site-packages/PKGlib-2.0.dist-info/METADATA": "Name: PKGlib\nVersion: 2.0\n"})
    code.new_run()  # a new run of the command
    after = code_of(f"procs_{pkg}", "p")
    assert before.code.changes(after) == [f"{pkg}lib"]


def test_a_library_named_otherwise_than_its_module_is_found(project, tmp_path, monkeypatch):
    """``sklearn`` from ``scikit-learn``: its files say which distribution holds it."""
    site = tmp_path / "site-packages"
    monkeypatch.syspath_prepend(str(site))
    pkg = project(
        {
            "site-packages/PKGmod/__init__.py": "",
            "site-packages/PKG_dist-3.1.dist-info/METADATA": "Name: PKG-dist\nVersion: 3.1\n",
            "site-packages/PKG_dist-3.1.dist-info/RECORD": (
                "PKGmod/__init__.py,sha256=x,0\nPKG_dist-3.1.dist-info/METADATA,,\n"
            ),
        }
    )
    assert code.library_version(f"{pkg}mod") == "3.1"
    assert code.library_version(f"{pkg}absent") == "-"


def test_what_a_record_lists_is_kept_between_runs_until_it_changes(
    project, tmp_path, monkeypatch
):
    """Reading every distribution's ``RECORD`` to find ``sklearn``'s is done once: later
    runs take it from the state folder, unless the ``RECORD`` changed (an upgrade)."""
    site = tmp_path / "site-packages"
    monkeypatch.syspath_prepend(str(site))
    state = tmp_path / "state"
    state.mkdir()
    pkg = project(
        {
            "site-packages/PKGmod/__init__.py": "",
            "site-packages/PKG_dist-3.1.dist-info/METADATA": "Name: PKG-dist\nVersion: 3.1\n",
            "site-packages/PKG_dist-3.1.dist-info/RECORD": "PKGmod/__init__.py,sha256=x,0\n",
        }
    )
    read: list[str] = []
    real_tops = code._tops
    monkeypatch.setattr(code, "_tops", lambda base: read.append(base) or real_tops(base))
    mine = str(site / f"{pkg}_dist-3.1.dist-info")
    code.new_run(state)
    assert code.library_version(f"{pkg}mod") == "3.1"
    assert mine in read and (state / "libraries.json").is_file()
    read.clear()
    code.new_run(state)  # the next run: the kept copy, no RECORD read
    assert code.library_version(f"{pkg}mod") == "3.1"
    assert mine not in read
    # reinstalled otherwise: its RECORD now lists another module, and is read again
    (site / f"{pkg}_dist-3.1.dist-info" / "RECORD").write_text(f"{pkg}other/__init__.py,,\n")
    (site / f"{pkg}other").mkdir()
    code.new_run(state)
    assert code.library_version(f"{pkg}other") == "3.1"
    assert mine in read
    # its METADATA rewritten in place (a version bumped by hand): read again too
    meta = site / f"{pkg}_dist-3.1.dist-info" / "METADATA"
    meta.write_text("Name: PKG-dist\nVersion: 3.20\n".replace("PKG", pkg))
    code.new_run(state)
    assert code.library_version(f"{pkg}other") == "3.20"
    code.new_run()


# -- what a process may do with its params ------------------------------------------------------

HELPERS = """
def reads(p):
    return p["a"]


def stores(p):
    KEEP.append(p)


KEEP = []
"""

ESCAPES = {
    # process body -> whether its params may be read where the worker cannot see
    'return params["a"]': False,
    'return params.get("a"), "b" in params, params.items()': False,
    "return dict(params), sorted(params), len(params), f'{params}'": False,
    "return {**params}, list(*params)": False,
    "p = params\n    return p['a']": False,
    "p = pipe.params\n    return p['a']": False,
    'return pipe.params["a"], pipe.vars, pipe.confs': False,
    "return helpers.reads(params)": False,
    "return reads(params)": False,
    "return helpers.reads(p=params)": False,
    "return helpers.stores(params)": True,
    "return json.dumps(params)": True,  # a library: C code may read it
    "return dict.items(params)": True,
    "return params": True,
    "return [params]": True,
    "KEEP.append(params)": True,
    "return locals()": True,
    "return some_library(pipe)": True,
    "return getattr(pipe, 'params')": True,
    "return pipe.__dict__": True,
}


@pytest.mark.parametrize("body", ESCAPES, ids=range(len(ESCAPES)))
def test_params_handed_to_code_that_cannot_be_followed_count_as_read_whole(project, body):
    pkg = project(
        {
            "helpers_PKG.py": HELPERS,
            "procs_PKG.py": (
                "import json\nimport helpers_PKG as helpers\nfrom helpers_PKG import reads\n"
                "KEEP = []\n\n"
                f"def p(params, pipe):\n    {body}\n"
            ),
        }
    )
    source = read_source(f"procs_{pkg}", Path(code.locate(f"procs_{pkg}")[1] or ""))
    assert source is not None

    def resolve(name: str):
        where, path = code.locate(name)
        return read_source(name, Path(path)) if where == "project" and path else None

    assert params_escape(source, "p", resolve) is ESCAPES[body]


def test_a_doubt_about_params_is_an_escape(module, tmp_path) -> None:
    path = module(
        "def p(**kwargs):\n    return 1\n\nclass C:\n    def m(self, params):\n        pass\n"
    )
    source = read_source("procs", path)
    assert source is not None
    assert params_escape(source, "p", lambda name: None)
    assert params_escape(source, "C.m", lambda name: None)
    assert params_escape(source, "missing", lambda name: None)


def test_which_processes_may_write_undeclared_variables(module) -> None:
    path = module(
        "from normandy_core import variables_storage\n\n"
        "def a(pipe):\n    pass\n\ndef b(x):\n    return x\n"
    )
    source = read_source("procs", path)
    assert source is not None
    assert writes_undeclared(source, "a", [])
    assert writes_undeclared(source, "b", [])  # the module calls variables_storage()
    clean = read_source("procs", module("def b(x):\n    return x\n"))
    assert clean is not None and not writes_undeclared(clean, "b", [])
