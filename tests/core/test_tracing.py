"""What a task's worker records while it runs (SPEC 13, :mod:`normandy_core._tracing`):
``params`` read through every path Python code takes (a table), and, running a real
``run_task`` in this process as the serial executor does, the files, folders, environment
variables, modules and programs a process uses — and what its module read when imported.

Tracing installs process-wide hooks (an audit hook cannot be removed): once installed in
this test process, they stay, doing nothing while no task records."""

from __future__ import annotations

import collections
import copy
import json
import os
import pickle
import string
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from normandy_core._tracing import Params, TraceSetup, _hooks
from normandy_core.store import FlowStore
from normandy_core.worker import TaskCall, run_task


def _kwargs(**kw: Any) -> dict[str, Any]:
    return kw


def _args(*a: Any) -> tuple[Any, ...]:
    return a


# how code reads a dict -> (keys noted as read, whether read whole)
ACCESS: dict[str, tuple[Callable[[Any], Any], set[str], bool]] = {
    "p[k]": (lambda p: p["a"], {"a"}, False),
    "p.get(k)": (lambda p: p.get("a"), {"a"}, False),
    "k in p": (lambda p: "a" in p, {"a"}, False),
    "a missing key": (lambda p: p.get("zz"), {"zz"}, False),
    "p.setdefault(k)": (lambda p: p.setdefault("b", 1), {"b"}, False),
    "'%(a)s' % p": (lambda p: "%(a)s" % p, {"a"}, False),  # noqa: UP031
    "format_map": (lambda p: "{a}".format_map(p), {"a"}, False),
    "string.Template": (lambda p: string.Template("$a").substitute(p), {"a"}, False),
    "dict(p)": (lambda p: dict(p), set(), True),
    "{**p}": (lambda p: {**p}, set(), True),
    "f(**p)": (lambda p: _kwargs(**p), set(), True),
    "f(*p)": (lambda p: _args(*p), set(), True),
    "iteration": (lambda p: list(p), set(), True),
    "keys": (lambda p: p.keys(), set(), True),
    "values": (lambda p: p.values(), set(), True),
    "items": (lambda p: p.items(), set(), True),
    "len": (lambda p: len(p), set(), True),
    "bool": (lambda p: bool(p), set(), True),
    "repr": (lambda p: repr(p), set(), True),
    "str": (lambda p: str(p), set(), True),
    "f-string": (lambda p: f"{p}", set(), True),
    "==": (lambda p: p == {}, set(), True),
    "reflected ==": (lambda p: p == {}, set(), True),
    "|": (lambda p: p | {}, set(), True),
    "reflected |": (lambda p: {} | p, set(), True),
    "copy": (lambda p: p.copy(), set(), True),
    "copy.copy": (lambda p: copy.copy(p), set(), True),
    "copy.deepcopy": (lambda p: copy.deepcopy(p), set(), True),
    "pickle": (lambda p: pickle.dumps(p), set(), True),
    "json.dumps": (lambda p: json.dumps(p), set(), True),
    "json.dumps indented": (lambda p: json.dumps(p, indent=1), set(), True),
    "update another dict": (lambda p: {}.update(p), set(), True),
    "dict.copy(p)": (lambda p: dict.copy(p), set(), True),
    "sorted": (lambda p: sorted(p), set(), True),
    "Counter": (lambda p: collections.Counter(p), set(), True),
    "ChainMap iteration": (lambda p: list(collections.ChainMap(p)), set(), True),
    "popitem": (lambda p: p.popitem(), set(), True),
}


@pytest.mark.parametrize("how", ACCESS, ids=ACCESS)
def test_params_note_what_every_access_path_reads(how: str) -> None:
    access, keys, whole = ACCESS[how]
    params = Params({"a": 1, "c": 2})
    access(params)
    assert params.whole is whole
    if not whole:  # read whole, which keys were read on the way does not matter
        assert params.read == keys


def test_params_stay_a_dict_and_pickle_as_one() -> None:
    params = Params({"a": 1})
    assert isinstance(params, dict) and params == {"a": 1}
    assert type(pickle.loads(pickle.dumps(params))) is dict
    assert type(copy.copy(params)) is dict


def test_what_python_cannot_see_is_left_to_the_source() -> None:
    """``dict.items(params)`` reads the storage itself: no method sees it (the process's
    source is what finds such an escape: tests/core/test_code.py)."""
    params = Params({"a": 1})
    dict.items(params)
    assert (params.read, params.whole) == (set(), False)


# -- a task, run here ------------------------------------------------------------------------------

PROCS = """
import os
import subprocess
from pathlib import Path

import {helpers}


def reads(pipe, params):
    here = Path(pipe.path)
    data = (here / "data.txt").read_text()
    os.chdir(here)
    with open("relative.txt") as relative:
        relative.read()
    (here / "out.txt").write_text("made here")
    (here / "out.txt").read_text()  # its own output: no input
    listed = sorted(os.listdir(here / "inputs"))
    a = os.environ["TRACE_A"]
    b = os.getenv("TRACE_MISSING", "default")
    c = "TRACE_C" in os.environ
    os.environ["TRACE_SET"] = "by the task"
    d = os.environ["TRACE_SET"]
    (here / "run" / "note.txt").read_text()  # the store's: variables count instead
    return params["n"], data, listed, a, b, c, d, {helpers}.VALUE


def starts(pipe):
    subprocess.run(["true"], check=True)


def counter(pipe):
    path = Path(pipe.path) / "counter.txt"
    n = int(path.read_text())
    path.write_text(str(n + 1))
    return type(pipe.params).__name__


def split(parameters, small):
    return parameters["test_size"], small


def imports(params):
    import importlib

    return importlib.import_module(params["mod"]).__name__
"""

DISTRIBUTIONS_PROC = """

def versions(params):
    import importlib.metadata

    found = importlib.metadata.distributions(path=[params["site"]])
    return sorted(d.metadata["Name"] for d in found)
"""

HELPERS = """
import json
from pathlib import Path

VALUE = json.loads((Path(__file__).parent / "helpers.json").read_text())["value"]
"""


@pytest.fixture
def traced(tmp_path: Path, write_module, module_name, clean_imports):
    """``traced(function, **call changes)``: run a process of PROCS with tracing, in this
    process; its TaskTrace."""
    code = tmp_path / "code"
    helpers = module_name("helpers")
    procs = module_name("procs")
    write_module(code, helpers, HELPERS)
    (code / "helpers.json").write_text('{"value": 7}')
    write_module(code, procs, PROCS.replace("{helpers}", helpers) + DISTRIBUTIONS_PROC)
    sys.path.insert(0, str(code))
    (tmp_path / "data.txt").write_text("data")
    (tmp_path / "relative.txt").write_text("relative")
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "one.csv").write_text("1")
    store = FlowStore(tmp_path / "run", "f")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "note.txt").write_text("the store's")
    _hooks.install()
    __import__(procs)  # as a fork server preloads it, before the task

    def run(function: str, setup: TraceSetup | None = None, **changes: Any) -> Any:
        key = f"f.s.{function}"
        fields: dict[str, Any] = dict(
            run_id="20260101-000000-abcd",
            flow="f",
            step="s",
            task=function,
            key=key,
            process=function,
            target=f"{procs}:{function}",
            params={"n": 1, "unused": 2},
            tags=(),
            env="dev",
            confs={},
            credentials={},
            root=str(tmp_path),
            vars_dir=str(store.vars_dir),
            staging_dir=str(store.staging(key)),
            tracing=setup or TraceSetup(b"k" * 32, (str(tmp_path / "run"),), (helpers,)),
        )
        fields.update(changes)
        cwd = os.getcwd()
        try:
            result = run_task(TaskCall(**fields))
        finally:
            os.chdir(cwd)
            os.environ.pop("TRACE_SET", None)
        assert result.ok, result.traceback
        return result.trace

    run.helpers = helpers  # type: ignore[attr-defined]
    run.procs = procs  # type: ignore[attr-defined]
    run.root = tmp_path  # type: ignore[attr-defined]
    return run


def test_a_tasks_reads_are_recorded(traced, monkeypatch) -> None:
    monkeypatch.setenv("TRACE_A", "secret-a")
    monkeypatch.delenv("TRACE_MISSING", raising=False)
    monkeypatch.delenv("TRACE_C", raising=False)
    trace = traced("reads")
    root = traced.root
    assert trace.params == ("n",) and not trace.params_whole
    files = dict(trace.files)
    # read by path (relative to the working directory too), and what its module's import
    # read (before the task, as a fork server preloads it)
    assert set(files) == {
        str(root / "data.txt"),
        str(root / "relative.txt"),
        str(root / "code" / "helpers.json"),
    }
    size, _, _, _, keyed = files[str(root / "data.txt")].split(":")
    assert size == "4" and len(keyed) == 32
    assert str(root / "out.txt") in trace.written
    assert list(dict(trace.folders)) == [str(root / "inputs")]
    environ = dict(trace.environ)
    assert set(environ) == {"TRACE_A", "TRACE_MISSING", "TRACE_C"}  # not what it set
    assert environ["TRACE_MISSING"] == environ["TRACE_C"] == "-"
    assert "secret-a" not in environ["TRACE_A"]  # keyed: the value is not there
    assert dict(trace.modules) == {traced.helpers: True}
    assert trace.programs == ()


def test_a_program_started_and_a_module_imported_by_name(traced) -> None:
    assert traced("starts").programs == ("true",)
    trace = traced("imports", params={"mod": traced.helpers})  # imported already: asked
    assert trace.params == ("mod",)
    assert dict(trace.modules) == {traced.helpers: True}
    assert traced.helpers in trace.imported
    standard = traced("imports", params={"mod": "json"})
    assert "json" not in dict(standard.modules)  # the standard library: Python's version


def test_a_file_read_then_written_is_noted_as_the_task_left_it(traced) -> None:
    """A counter it keeps, a cache it fills: not its own changed input the next time."""
    from normandy_core._tracing import file_stamp
    from normandy_core._tracing._hooks import observe
    from normandy_core.fingerprint import Keyed

    path = traced.root / "counter.txt"
    path.write_text("1")
    trace = traced("counter")
    assert path.read_text() == "2"
    observed = observe(str(path))
    assert isinstance(observed, tuple)
    assert dict(trace.files)[str(path)] == file_stamp(Keyed(b"k" * 32), *observed)
    assert str(path) in trace.written


def test_params_handed_on_are_a_plain_dict_read_whole(traced) -> None:
    setup = TraceSetup(b"k" * 32, (), (traced.helpers,), params_keys=False)
    (traced.root / "counter.txt").write_text("1")
    trace = traced("counter", setup)
    assert trace.params_whole


def test_params_given_as_arguments_are_noted_as_read(traced) -> None:
    """SPEC 20: a task given ``params.KEY…`` as arguments reads those params (their
    top-level keys): a change of one of them reruns it, of another param does not."""
    from normandy_core.binding import FromParams

    trace = traced(
        "split",
        params={"split_options": {"test_size": 0.2}, "sizes": {"small": 3}, "other": 1},
        inputs={
            "parameters": FromParams(("split_options",)),
            "small": FromParams(("sizes", "small")),
        },
    )
    assert trace.params == ("sizes", "split_options") and not trace.params_whole


def test_a_file_whose_stamp_is_known_is_not_hashed_again(traced, monkeypatch) -> None:
    monkeypatch.setenv("TRACE_A", "a")
    first = dict(traced("reads").files)
    hashed: list[str] = []
    original = _hooks.file_digest

    def counting(path: str) -> bytes:
        hashed.append(path)
        return original(path)

    monkeypatch.setattr(_hooks, "file_digest", counting)
    _hooks._digests.clear()
    setup = TraceSetup(
        b"k" * 32,
        (str(traced.root / "run"),),
        (traced.helpers,),
        known=tuple(first.items()),
    )
    second = dict(traced("reads", setup).files)
    assert second == first and hashed == []


def test_reading_the_whole_environment_notes_its_names(traced, tmp_path) -> None:
    from normandy_core._tracing import Recording

    setup = TraceSetup(b"k" * 32)
    recording = Recording(setup, "nothing", Params())
    recording.start()
    try:
        dict(os.environ)
    finally:
        trace = recording.finish()
    listing = dict(trace.environ)["*"]
    assert "NORMANDY_PRELOAD_SOCKET" in listing.partition(":")[2].split(",")


def test_a_library_counts_with_what_it_imports(tmp_path, write_module, module_name, clean_imports):
    """A library's own dependency (imported by the library, not by the process) counts."""
    from normandy_core._tracing import Recording

    site = tmp_path / "site-packages"
    lib, dep = module_name("lib"), module_name("dep")
    write_module(site, dep, "VALUE = 1\n")
    write_module(site, lib, f"import {dep}\n")
    sys.path.insert(0, str(site))
    _hooks.install()
    __import__(lib)
    recording = Recording(TraceSetup(b"k" * 32, libraries=(lib,)), "nothing", Params())
    recording.start()
    trace = recording.finish()
    assert {lib, dep} <= set(trace.libraries)


def test_an_import_statement_in_a_module_is_noted_as_that_modules(
    tmp_path, write_module, module_name, clean_imports
):
    outer, inner = module_name("outer"), module_name("inner")
    write_module(tmp_path, inner, "X = 1\n")
    write_module(
        tmp_path,
        outer,
        f"import {inner}\nimport os\nos.getenv('TRACE_IMPORT_TIME')\n",
    )
    sys.path.insert(0, str(tmp_path))
    _hooks.install()
    __import__(outer)
    seen = _hooks.imported(outer)
    assert seen is not None and inner in seen.modules
    assert "TRACE_IMPORT_TIME" in seen.environ


def test_looking_for_distributions_reads_their_metadata_folders_only(traced) -> None:
    """``importlib.metadata`` lists the folders of ``sys.path`` to find distributions:
    what the task depends on is which are installed there, not every file of the folder
    (an ``out/`` made in the project's folder reran every task whose library asked for
    its version)."""
    from normandy_core._tracing._hooks import DISTRIBUTIONS, listing

    site = traced.root / "site"
    (site / "lib_one-1.0.dist-info").mkdir(parents=True)
    (site / "lib_one-1.0.dist-info" / "METADATA").write_text("Name: lib-one\nVersion: 1.0\n")
    trace = traced("versions", params={"site": str(site)})
    key = os.path.join(str(site), DISTRIBUTIONS)
    assert list(dict(trace.folders)) == [key]
    before = listing(key)
    (site / "out").mkdir()  # another file of the folder: the same distributions
    (site / "notes.txt").write_text("")
    assert listing(key) == before
    (site / "lib_two-2.0.dist-info").mkdir()  # one more installed: they changed
    assert listing(key) != before
    assert listing(str(site)) != listing(key)  # a plain folder read is of every name
