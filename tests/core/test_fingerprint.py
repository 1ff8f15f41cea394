"""The fingerprint and its verification (SPEC 13): one case per check that decides reuse,
each failing when its check is removed.

- :func:`verify`, a pure function: a recorded fingerprint, the task's fingerprint now and
  a world of checks (here made by hand) -> why it cannot be reused;
- the checks of the real world (:mod:`normandy_core.execution._world`): files, folders,
  environment variables, modules, libraries, params, variables — on real files;
- what :class:`Reuse` checks besides (the variables still stored, the outputs declared,
  the run not pruned), on a real history.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest

from normandy_core import code
from normandy_core.binding import Outputs
from normandy_core.execution._reuse import Decision, Reuse
from normandy_core.execution._variables import RunVariables
from normandy_core.execution._world import Now, names_hash, task_checks
from normandy_core.fingerprint import Code, Fingerprint, Keyed, Wiring, verify
from normandy_core.history import History, Success, VariableAccess
from normandy_core.plan import Task
from normandy_core.project import Checked
from normandy_core.store import LocalPlace
from normandy_core.trace import Trace, World
from tests.core.test_history_db import run_info, task_rows

CODE = Code("procs", "s1", "", (("helpers", "h1"), ("python", "3.11.7")))
WIRING = Wiring("procs:double", (("rows", "raw"),), "outputs: [lo, hi]")
NOW = Fingerprint(CODE, WIRING, "env1", "cred1")

READS = {
    "variables": {"raw": "v1"},
    "exists": {"maybe": "no"},
    "listing": {"variables": "names1"},
    "params": {"n": "p1"},
    "environ": {"HOME": "e1"},
    "files": {"/data/x.csv": "f1"},
    "folders": {"/data": "d1"},
    "modules": {"dyn": "m1"},
    "libraries": {"libb": "1.0"},
}


def world(**changed: set[str]) -> World:
    """Every check of READS, each saying "unchanged" but for the names in ``changed``."""
    return World(
        {
            kind: (lambda name, seen, kind=kind: name not in changed.get(kind, set()))
            for kind in [*READS, "datasets", "datasets written"]
        }
    )


RECORDED = replace(NOW, trace=Trace(READS))

# name -> (recorded, now, world, the reasons)
CASES: dict[str, tuple[Fingerprint, Fingerprint, World, list[str]]] = {
    "nothing changed": (RECORDED, NOW, world(), []),
    "the process's own code": (
        RECORDED,
        replace(NOW, code=replace(CODE, source="s2")),
        world(),
        ["code changed (procs)"],
    ),
    "the distribution of its module": (
        RECORDED,
        replace(NOW, code=replace(CODE, distribution="procs==2")),
        world(),
        ["code changed (procs)"],
    ),
    "a module its code imports": (
        RECORDED,
        replace(NOW, code=replace(CODE, imports=(("helpers", "h2"), ("python", "3.11.7")))),
        world(),
        ["code changed (helpers)"],
    ),
    "python": (
        RECORDED,
        replace(NOW, code=replace(CODE, imports=(("helpers", "h1"), ("python", "3.12.0")))),
        world(),
        ["code changed (python)"],
    ),
    "process retargeted": (
        RECORDED,
        replace(NOW, wiring=replace(WIRING, process="procs:triple")),
        world(),
        ["process changed (procs:double → procs:triple)"],
    ),
    "an input remapped": (
        RECORDED,
        replace(NOW, wiring=replace(WIRING, inputs=(("rows", "clean"),))),
        world(),
        ["inputs changed (rows: raw → clean)"],
    ),
    "outputs reordered": (
        RECORDED,
        replace(NOW, wiring=replace(WIRING, outputs="outputs: [hi, lo]")),
        world(),
        ["outputs changed ([lo, hi] → [hi, lo])"],
    ),
    "the env": (RECORDED, replace(NOW, env="env2"), world(), ["env changed"]),
    "credentials": (
        RECORDED,
        replace(NOW, credentials="cred2"),
        world(),
        ["env changed (credentials)"],
    ),
    "a variable read": (RECORDED, NOW, world(variables={"raw"}), ["input changed (raw)"]),
    "a variable tested": (RECORDED, NOW, world(exists={"maybe"}), ["input changed (maybe)"]),
    "the variables listed": (
        RECORDED,
        NOW,
        world(listing={"variables"}),
        ["input changed (the list of variables)"],
    ),
    "a param read": (RECORDED, NOW, world(params={"n"}), ["params changed (n)"]),
    "an environment variable": (
        RECORDED,
        NOW,
        world(environ={"HOME"}),
        ["environment changed (HOME)"],
    ),
    "a file": (RECORDED, NOW, world(files={"/data/x.csv"}), ["file changed (/data/x.csv)"]),
    "a folder": (RECORDED, NOW, world(folders={"/data"}), ["folder changed (/data)"]),
    "a module it imported while it ran": (
        RECORDED,
        NOW,
        world(modules={"dyn"}),
        ["code changed (dyn)"],
    ),
    "a library it imported": (RECORDED, NOW, world(libraries={"libb"}), ["code changed (libb)"]),
    "a program it started": (
        replace(NOW, trace=Trace({"programs": {"git": ""}})),
        NOW,
        world(),
        ["it started git when it ran: what a program reads is not traced"],
    ),
    "a kind this Normandy has no check for": (
        replace(NOW, trace=Trace({"tables": {"t": "1"}})),
        NOW,
        world(),
        ["recorded what it read as 'tables', which this Normandy cannot verify"],
    ),
    "a write that must still hold (a dataset saved)": (
        replace(NOW, trace=Trace({}, {"datasets written": {"model": "m1"}})),
        NOW,
        world(**{"datasets written": {"model"}}),
        ["its output dataset changed or is missing (model)"],
    ),
    "a dataset read": (
        replace(NOW, trace=Trace({"datasets": {"companies": "c1"}})),
        NOW,
        world(datasets={"companies"}),
        ["dataset changed (companies)"],
    ),
    "recorded before traces": (
        Fingerprint.from_dict({"format": 1, "code": ["procs", "s1", "", {}]}),
        NOW,
        world(),
        ["recorded by an older Normandy (format 1), before it traced what tasks read"],
    ),
}


@pytest.mark.parametrize("case", CASES, ids=CASES)
def test_verify(case: str) -> None:
    recorded, now, checks, reasons = CASES[case]
    assert verify(recorded, now, checks) == reasons


def test_a_fingerprint_is_stored_and_read_back_as_it_was() -> None:
    notes = {"imported": ("pandas",)}
    fingerprint = replace(RECORDED, trace=Trace(READS, {"datasets": {"a": "1"}}, notes))
    again = Fingerprint.from_dict(fingerprint.to_dict())
    assert again == fingerprint
    assert again.key == replace(fingerprint, trace=Trace(READS, {"datasets": {"a": "1"}})).key


def test_hashes_of_values_are_keyed() -> None:
    one, other = Keyed(b"1" * 32), Keyed(b"2" * 32)
    assert one("abc") == one("abc") != other("abc")
    assert len(one("abc")) == 32


# -- the checks of the real world ------------------------------------------------------------------


@pytest.fixture
def now(tmp_path: Path) -> Now:
    return Now(Keyed(b"k" * 32), tmp_path)


def recorded_file(now: Now, path: Path) -> str:
    """A file as a worker records it."""
    from normandy_core._tracing import file_stamp
    from normandy_core._tracing._hooks import observe

    observed = observe(str(path))
    assert isinstance(observed, tuple)
    return file_stamp(now.keyed, *observed)


def test_a_file(now: Now, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("id\n1,aaa\n")
    seen = recorded_file(now, path)
    assert now.file(str(path), seen)
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))  # touched: same content
    assert now.file(str(path), seen)
    path.write_text("id\n1,bbb\n")  # same size, its time put back: its content counts
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert not now.file(str(path), seen)
    path.write_text("id\n1,aaa,more\n")
    assert not now.file(str(path), seen)
    path.unlink()
    assert not now.file(str(path), seen)
    assert now.file(str(path), "-")  # was absent, still is
    path.write_text("x")
    assert not now.file(str(path), "-")  # was absent, is there


def test_a_folder(now: Now, tmp_path: Path) -> None:
    from normandy_core._tracing._hooks import listing

    (tmp_path / "a.csv").write_text("")
    seen = now.keyed.bytes(listing(str(tmp_path)) or b"")
    assert now.folder(str(tmp_path), seen)
    (tmp_path / "b.csv").write_text("")
    assert not now.folder(str(tmp_path), seen)


def test_an_environment_variable(now: Now, monkeypatch) -> None:
    from normandy_core._tracing import environ_listing

    monkeypatch.setenv("FP_TEST", "one")
    assert now.environ("FP_TEST", now.keyed("one"))
    assert not now.environ("FP_TEST", now.keyed("two"))
    assert not now.environ("FP_TEST", "-")
    monkeypatch.delenv("FP_TEST")
    assert now.environ("FP_TEST", "-")
    listed = environ_listing(now.keyed, ["SET_BY_CODE"], list(os.environ))
    assert now.environ("*", listed)
    monkeypatch.setenv("SET_BY_CODE", "x")  # left out: set by the task's own code
    assert now.environ("*", listed)
    monkeypatch.setenv("FP_NEW", "x")
    assert not now.environ("*", listed)


def test_a_module_and_a_library(now: Now, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "fp_dyn.py").write_text("X = 1\n")
    seen = code.module_hash("fp_dyn")
    assert now.module("fp_dyn", seen)
    fresh = Now(now.keyed, tmp_path)  # a new run
    (tmp_path / "fp_dyn.py").write_text("X = 2\n")
    assert not fresh.module("fp_dyn", seen)
    assert fresh.module("fp_absent", "-")
    monkeypatch.setitem(code._versions, "fp_lib", "1.0")
    assert now.library("fp_lib", "1.0")
    assert not now.library("fp_lib", "2.0")


def test_the_task_checks(now: Now) -> None:
    hashes = {"raw": "v1"}
    params = {"n": "p1", "*": "all1"}
    checks = task_checks(now, hashes.get, lambda: sorted(hashes), lambda key: params.get(key, "-"))
    assert checks["variables"]("raw", "v1") and not checks["variables"]("raw", "v2")
    assert checks["variables"]("gone", "-")
    assert checks["exists"]("raw", "yes") and not checks["exists"]("maybe", "yes")
    assert checks["listing"]("variables", names_hash(["raw"]))
    assert not checks["listing"]("variables", names_hash(["raw", "new"]))
    assert checks["params"]("n", "p1") and not checks["params"]("n", "p2")
    assert checks["params"]("*", "all1") and not checks["params"]("*", "all2")
    assert checks["params"]("absent", "-")


# -- what Reuse checks besides ---------------------------------------------------------------------


@pytest.fixture
def reuse(tmp_path: Path) -> Reuse:
    history = History(tmp_path / ".normandy")
    store = LocalPlace(tmp_path / ".normandy")
    reuse = Reuse(
        history,
        store,
        RunVariables(store / "runs" / "now"),
        Checked("dev", MappingProxyType({}), MappingProxyType({})),
        None,  # type: ignore[arg-type]  # not needed: no process is looked at
        (),
    )
    yield reuse
    history.close()


def success(reuse: Reuse, run_id: str, *names: str) -> Success:
    reuse.history.start_run(run_info(run_id, time.time()), task_rows())
    reuse.history.end_run(run_id, "succeeded")
    folder = reuse.store / "runs" / run_id / "vars" / "f"
    for name in names:
        assert isinstance(folder, LocalPlace)
        folder.path.mkdir(parents=True, exist_ok=True)
        (folder.path / f"{name}.nv").write_bytes(b"x")
    writes = tuple(VariableAccess("f", n, "write", "h") for n in names)
    return Success(run_id, NOW, {}, writes, run_id)


TASK = Task("f", "s", "t", "t", {}, outputs=Outputs("sequence", ("lo", "hi")))


def test_a_success_whose_variables_are_gone(reuse: Reuse) -> None:
    found = success(reuse, "r1", "lo", "hi")
    assert reuse._unusable(TASK, found) == []
    (reuse.store / "runs" / "r1" / "vars" / "f" / "hi.nv").remove()
    assert reuse._unusable(TASK, found) == ["its variables are no longer stored (hi of run r1)"]


def test_a_success_whose_variable_names_a_file_gone(reuse: Reuse) -> None:
    """Its variable is a reference (a store without hard links) to a file pruned since:
    gone too. Where the file is there, binding links the file the reference names."""
    from normandy_core.store._format import reference

    found = success(reuse, "r1", "lo", "hi")
    first = reuse.store / "runs" / "r0" / "vars" / "f" / "hi.nv"
    first.write([b"x"])
    (reuse.store / "runs" / "r1" / "vars" / "f" / "hi.nv").write([reference(str(first))])
    assert reuse._unusable(TASK, found) == []
    first.remove()
    assert reuse._unusable(TASK, found) == ["its variables are no longer stored (hi of run r1)"]
    first.write([b"x"])
    assert reuse._unusable(TASK, found) == []
    reuse.bind(Decision(TASK, found, "reuse r1"))
    bound = reuse.variables.run_dir / "staging" / "bound" / "f.s.t.hi"
    assert isinstance(bound, LocalPlace) and bound.path.stat().st_ino == first.path.stat().st_ino


def test_a_success_that_did_not_make_the_outputs_declared(reuse: Reuse) -> None:
    found = success(reuse, "r1", "lo")
    assert reuse._unusable(TASK, found) == ["run r1 did not make its outputs (hi)"]


def test_a_dataset_output_counts_as_made_only_where_its_save_was_traced(reuse: Reuse) -> None:
    """A declared output that is a dataset is saved, not stored: a success stands for it
    only where its trace recorded the save (which verify checks is still there), never
    for the output being a dataset's name (a success of before datasets were traced)."""
    from normandy_core.trace import DATASET_WRITTEN

    untraced = success(reuse, "r1", "lo")  # "hi" is a dataset: no variable stored
    assert reuse._unusable(TASK, untraced) == ["run r1 did not make its outputs (hi)"]
    saved = Trace({}, {DATASET_WRITTEN: {"hi": '["d", null, 1, 1, null, "-"]'}}, {})
    traced = Success(
        untraced.run_id, NOW.with_trace(saved), untraced.params, untraced.writes, untraced.origin
    )
    assert reuse._unusable(TASK, traced) == []


def test_a_success_of_a_run_pruned_meanwhile(reuse: Reuse) -> None:
    found = success(reuse, "r1", "lo", "hi")
    reuse.history.start_run(run_info("now", time.time()), task_rows())
    reuse.recording = "now"
    reuse.history.prune(["r1"], time.time())
    assert reuse._unusable(TASK, found) == ["run r1 was pruned meanwhile (normandy gc)"]
    other = success(reuse, "r2", "lo", "hi")
    assert reuse._unusable(TASK, other) == []
    assert reuse.history.sources(["now"]) == {"r2"}


def test_a_fingerprint_read_back_keeps_what_was_recorded_and_is_recorded_the_same() -> None:
    """A reused task records its success's fingerprint again as it was read (not written
    and hashed anew): what it records must be what writing it anew would give."""
    recorded = replace(RECORDED, trace=Trace(READS, notes={"imported": ("x",)}))
    read = Fingerprint.from_stored(recorded.stored, recorded.key)
    assert read == recorded and read.stored == recorded.stored and read.key == recorded.key
    fresh = Fingerprint.from_dict(json.loads(recorded.stored))
    assert fresh.stored == read.stored and fresh.key == read.key  # kept = made anew
    legacy = json.dumps({"format": 1, "code": ["m", "s", None]})
    old = Fingerprint.from_stored(legacy, "k")  # an older format: made anew, not kept
    assert old.stored != legacy and old.key != "k"
