"""The variables storage (SPEC 5): value files, names, a flow's commit/discard, ``pipe.vars``.

Tests taking the ``root`` fixture run twice: on a local folder (memory-mapped reads) and on
fsspec's ``memory://`` file system (the path every remote store takes: ``s3://``…).
"""

from __future__ import annotations

import mmap
import subprocess
import sys
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from normandy_core.store import (
    FlowStore,
    LocalPlace,
    Place,
    UndeclaredRead,
    Variables,
    check_name,
    file_part,
    place,
    read_value,
    read_variable,
    store_output,
    store_problem,
    store_root,
    write_value,
)
from normandy_core.store._flow import FILE_PART_MAX
from normandy_core.store._format import content_hash, reference


@pytest.fixture(params=["local", "memory"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    """An empty folder of a store: local, or ``memory://`` through fsspec."""
    if request.param == "local":
        yield LocalPlace(tmp_path)
        return
    pytest.importorskip("fsspec")
    folder = place(f"memory://normandy-tests/{uuid.uuid4().hex}")
    yield folder
    folder.remove()


# -- value files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        0,
        -3.5,
        "text with ünïcode",
        b"\x00bytes\xff",
        [1, "two", 3.0, None],
        {"nested": {"list": [1, 2, {"x": (1, 2)}]}, "set": {1, 2}},
        list(range(10_000)),
    ],
    ids=["none", "int", "float", "str", "bytes", "list", "dict", "long-list"],
)
def test_round_trip_plain_values(root: Place, value):
    path = root / "v.nv"
    write_value(path, "v", value)
    assert read_value(path) == value


def test_write_is_atomic_and_overwrites(root: Place):
    path = root / "sub" / "v.nv"
    write_value(path, "v", "first")
    write_value(path, "v", "second")
    assert read_value(path) == "second"
    assert path.parent.names("") == ["v.nv"]  # no temporary left


def test_not_a_variable_file(root: Place):
    path = root / "junk.nv"
    path.write([b"hello world, not a variable"])
    with pytest.raises(ValueError, match="not a Normandy variable file"):
        read_value(path)
    empty = root / "empty.nv"
    empty.write([b""])
    with pytest.raises(ValueError):
        read_value(empty)


def _memory_mapped(array) -> bool:
    base = array
    while base is not None:
        if isinstance(base, mmap.mmap):
            return True
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return False


def test_numpy_arrays_read_back_memory_mapped(tmp_path: Path):
    np = pytest.importorskip("numpy")
    path = tmp_path / "a.nv"
    array = np.arange(1_000_000, dtype="float64")
    write_value(path, "a", array)
    assert path.stat().st_size >= array.nbytes
    back = read_value(path)
    assert isinstance(back, np.ndarray)
    assert back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array)
    assert not back.flags.owndata
    assert _memory_mapped(back)


@pytest.mark.parametrize("kind", ["fortran", "strided", "empty", "2d-int", "in-a-dict"])
def test_numpy_array_layouts(root: Place, kind):
    np = pytest.importorskip("numpy")
    value = {
        "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "strided": np.arange(30)[::3],
        "empty": np.empty((0, 3)),
        "2d-int": np.arange(12, dtype="int32").reshape(4, 3),
        "in-a-dict": {"x": np.arange(5), "y": [np.ones(3, dtype="uint8"), "z"]},
    }[kind]
    path = root / "a.nv"
    write_value(path, "a", value)
    back = read_value(path)
    if kind == "in-a-dict":
        assert np.array_equal(back["x"], value["x"])
        assert np.array_equal(back["y"][0], value["y"][0]) and back["y"][1] == "z"
    else:
        assert back.dtype == value.dtype and back.shape == value.shape
        assert np.array_equal(back, value)
        if kind == "fortran":
            assert back.flags.f_contiguous


def test_many_buffers_are_aligned(root: Place):
    np = pytest.importorskip("numpy")
    values = [np.arange(n, dtype="int8") for n in (1, 3, 7, 65, 130)]
    path = root / "a.nv"
    write_value(path, "a", values)
    back = read_value(path)
    assert all(np.array_equal(a, b) for a, b in zip(back, values))
    for array in back:
        if array.size:
            assert array.ctypes.data % 64 == 0


def test_pandas_dataframe_round_trip(root: Place):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"id": [1, 2, 3], "foo": [1.5, 2.5, None], "bar": ["a", "b", "c"]})
    path = root / "df.nv"
    write_value(path, "df", frame)
    back = read_value(path)
    pd.testing.assert_frame_equal(back, frame)


@pytest.mark.parametrize(
    "value",
    [lambda: 1, threading.Lock(), {"nested": [threading.Lock()]}],
    ids=["lambda", "lock", "nested-lock"],
)
def test_unpicklable_value_names_the_variable(root: Place, value):
    path = root / "bad.nv"
    with pytest.raises(TypeError, match="variable 'my_var' cannot be stored"):
        write_value(path, "my_var", value)
    assert not path.exists()
    assert root.names("") == []


def test_open_file_is_unpicklable(tmp_path: Path):
    with open(tmp_path / "f.txt", "w") as handle, pytest.raises(TypeError, match="'conn'"):
        write_value(tmp_path / "x.nv", "conn", handle)


# -- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../x", "a/b", ".", "..", "", "a\\b", "/abs", "a b", "a\n", "x\x00", "é", 1, None],
    ids=repr,
)
def test_check_name_rejects(name):
    with pytest.raises(ValueError, match="invalid variable name"):
        check_name(name)


@pytest.mark.parametrize("name", ["main_df", "a.b-c", "A1", "...", "_", "x.nv", "-"])
def test_check_name_accepts(name):
    assert check_name(name) == name


# -- a flow's store -----------------------------------------------------------------------


def _vars(store: FlowStore, key: str) -> Variables:
    return Variables(store.vars_dir, store.staging(key))


def test_commit_makes_a_tasks_writes_visible(root: Place):
    store = FlowStore(root / "run", "f")
    assert store.names() == []
    writer = _vars(store, "f.s.writer")
    writer["b"] = 2
    writer.update("a", 1)
    other = _vars(store, "f.t.reader")
    assert "a" not in other  # staged, not yet committed
    assert store.staged_names("f.s.writer") == ["a", "b"]
    assert store.commit("f.s.writer") == ["a", "b"]
    assert store.names() == ["a", "b"]
    assert store.staged_names("f.s.writer") == []
    assert not store.staging("f.s.writer").exists()
    assert other["a"] == 1 and other.get("b") == 2
    assert read_value(store.path("a")) == 1


def test_task_keys_with_brackets_and_stars_commit_and_discard(root: Place):
    """Task names hold brackets (iter_param): never read as glob patterns."""
    store = FlowStore(root / "run", "f")
    for name, key in (("a", "f.s.t[a]"), ("star", "f.s.t[*]"), ("q", "f.s.t[?]")):
        _vars(store, key)[name] = key
    _vars(store, "f.s.ta")["other"] = "kept staged"  # what t[a] would match as a pattern
    store.commit("f.s.t[a]")
    store.discard("f.s.t[*]")
    store.commit("f.s.t[?]")
    assert store.names() == ["a", "q"]
    assert read_value(store.path("a")) == "f.s.t[a]"
    assert store.staged_names("f.s.ta") == ["other"]
    assert not store.staging("f.s.t[a]").exists() and not store.staging("f.s.t[*]").exists()


def test_discard_drops_a_tasks_writes(root: Place):
    store = FlowStore(root / "run", "f")
    _vars(store, "f.s.ok")["kept"] = "yes"
    store.commit("f.s.ok")
    failing = _vars(store, "f.s.bad")
    failing["lost"] = 1
    failing["kept"] = "overwritten?"
    store.discard("f.s.bad")
    assert store.names() == ["kept"]
    assert _vars(store, "f.t.next")["kept"] == "yes"
    assert store.commit("f.s.bad") == []  # nothing left to commit
    store.discard("f.s.never-wrote")  # no error


def test_commit_of_a_task_without_writes(root: Place):
    store = FlowStore(root / "run", "f")
    assert store.commit("f.s.quiet") == []
    assert store.names() == []


def test_under_dataflow_a_task_reads_only_what_it_declares(root: Place):
    store = FlowStore(root / "run", "f")
    _vars(store, "f.s.w").update("declared", 1)
    _vars(store, "f.s.w").update("other", 2)
    store.commit("f.s.w")
    task = Variables(store.vars_dir, store.staging("f.t.r"), declared=["declared", "missing"])
    assert task["declared"] == 1 and "declared" in task
    assert task.get("missing", "default") == "default"  # declared, not written: as ever
    task["own"] = 3
    assert task["own"] == 3 and "own" in task  # its own writes, always
    for read in (
        lambda: task["other"],
        lambda: task.get("other"),
        lambda: task.value("other"),
        lambda: "other" in task,
    ):
        with pytest.raises(UndeclaredRead, match=r"read the variable 'other' through pipe.vars,"):
            read()
    with pytest.raises(UndeclaredRead, match=r"listed the variables \(pipe.vars.keys\(\)\)"):
        task.keys()
    assert task.reads == {"declared": task.reads["declared"], "missing": None}


def test_an_elements_output_is_written_by_normandy_never_by_a_process(root: Place):
    store = FlowStore(root / "run", "f")
    task = _vars(store, "f.s.each[a%2Fb]")
    store_output(task, "results[a%2Fb]", 1)
    assert store.staged_names("f.s.each[a%2Fb]") == ["results[a%2Fb]"]
    with pytest.raises(ValueError, match="invalid variable name"):
        task["results[x]"] = 2
    with pytest.raises(ValueError, match="invalid variable name"):
        store_output(task, "../x[y]", 1)


def test_flows_are_separate(root: Place):
    run_dir = root / "run"
    one, two = FlowStore(run_dir, "one"), FlowStore(run_dir, "two")
    _vars(one, "one.s.t")["x"] = 1
    one.commit("one.s.t")
    assert "x" not in _vars(two, "two.s.t")
    assert two.names() == []


def test_store_path_checks_names(root: Place):
    store = FlowStore(root / "run", "f")
    with pytest.raises(ValueError):
        store.path("../escape")


def test_staging_folders_are_distinct_per_task(root: Place):
    store = FlowStore(root / "run", "f")
    keys = ["f.s.t[a/b]", "f.s.t[a_b]", "f.s.t[a%2Fb]", "f.s.t[a\\b]", "f.s.t[..]", "f.s.t[.]"]
    folders = [store.staging(key) for key in keys]
    assert len(set(folders)) == len(keys)
    for folder in folders:
        assert folder.parent == store.staging_root


def test_staging_stays_inside_the_flows_staging_folder(root: Place):
    store = FlowStore(root / "run", "f")
    folder = store.staging("f.s.t[../../../x]")
    assert folder.parent == store.staging_root


# -- pipe.vars ----------------------------------------------------------------------------


def test_own_staged_writes_are_read_before_committed_ones(root: Place):
    store = FlowStore(root / "run", "f")
    earlier = _vars(store, "f.s1.t")
    earlier["x"] = "committed"
    earlier["y"] = "only committed"
    store.commit("f.s1.t")
    task = _vars(store, "f.s2.t")
    assert task["x"] == "committed"
    task["x"] = "staged"
    assert task["x"] == "staged" and task.get("x") == "staged"
    assert task["y"] == "only committed"
    assert task.keys() == ["x", "y"]
    assert list(task) == ["x", "y"]
    assert _vars(store, "f.s2.other")["x"] == "committed"  # a sibling does not see it


def test_missing_variable(root: Place):
    store = FlowStore(root / "run", "f")
    task = _vars(store, "f.s.t")
    with pytest.raises(KeyError, match=r"no variable 'nope' in this flow \(known: none\)"):
        task["nope"]
    _vars(store, "f.s0.t")["beta"] = 2
    store.commit("f.s0.t")
    task["alpha"] = 1
    with pytest.raises(KeyError) as info:
        task["nope"]
    message = str(info.value)
    assert "'nope'" in message and "alpha, beta" in message
    assert task.get("nope") is None
    assert task.get("nope", "dflt") == "dflt"
    assert "nope" not in task


def test_invalid_names_raise_value_error(root: Place):
    task = _vars(FlowStore(root / "run", "f"), "f.s.t")
    for name in ("../x", "a/b", ".", "..", ""):
        with pytest.raises(ValueError):
            task.update(name, 1)
        with pytest.raises(ValueError):
            task[name] = 1
        with pytest.raises(ValueError):
            task.get(name)
        with pytest.raises(ValueError):
            task[name]
        assert name not in task
    assert not (root / "x.nv").exists()
    store = FlowStore(root / "run", "f")
    assert store.names() == [] and store.staged_names("f.s.t") == []


def test_unpicklable_through_pipe_vars(root: Place):
    task = _vars(FlowStore(root / "run", "f"), "f.s.t")
    with pytest.raises(TypeError, match="'lock'"):
        task["lock"] = threading.Lock()
    assert "lock" not in task


def test_numpy_through_pipe_vars(root: Place):
    np = pytest.importorskip("numpy")
    store = FlowStore(root / "run", "f")
    _vars(store, "f.s1.t")["arr"] = np.arange(100_000, dtype="int64")
    store.commit("f.s1.t")
    back = _vars(store, "f.s2.t")["arr"]
    assert np.array_equal(back, np.arange(100_000, dtype="int64"))


def test_arrays_read_back_are_writable_and_aligned_on_every_store(root: Place):
    np = pytest.importorskip("numpy")
    store = FlowStore(root / "run", "f")
    _vars(store, "f.s1.t")["arr"] = np.arange(1000, dtype="float64")
    store.commit("f.s1.t")
    back = _vars(store, "f.s2.t")["arr"]
    assert back.ctypes.data % 64 == 0
    back[0] = -1.0  # a private copy-on-write change, allowed as for any array
    assert _vars(store, "f.s2.other")["arr"][0] == 0.0


def test_a_task_sees_what_was_committed_after_it_looked(root: Place):
    """fsspec caches listings: a reader must not keep an old one across a commit."""
    store = FlowStore(root / "run", "f")
    reader = _vars(store, "f.s2.t")
    assert reader.keys() == [] and "late" not in reader
    _vars(store, "f.s1.t")["late"] = "here"
    store.commit("f.s1.t")
    assert reader.keys() == ["late"] and "late" in reader and reader["late"] == "here"


def test_resume_copies_values_within_a_store(root: Place):
    old, new = FlowStore(root / "old", "f"), FlowStore(root / "new", "f")
    _vars(old, "f.s.t")["x"] = [1, 2]
    old.commit("f.s.t")
    old.path("x").copy_to(new.path("x"))
    assert read_value(new.path("x")) == [1, 2] and read_value(old.path("x")) == [1, 2]


def test_places_are_named_by_text_that_workers_turn_back_into_them(root: Place):
    file = root / "run" / "vars" / "f" / "a.nv"
    again = place(str(file))
    assert again == file and type(again) is type(file)
    assert again.parent.parent == root / "run" / "vars"
    assert again.name == "a.nv"


def test_file_urls_and_paths_are_local(tmp_path: Path):
    assert place(tmp_path.as_uri()) == LocalPlace(tmp_path)
    assert place(str(tmp_path)) == LocalPlace(tmp_path)
    assert isinstance(place(f"file://{tmp_path}/a b"), LocalPlace)


def test_moving_between_stores_is_refused(tmp_path: Path):
    pytest.importorskip("fsspec")
    local = LocalPlace(tmp_path / "a.nv")
    write_value(local, "a", 1)
    with pytest.raises(TypeError, match="another store"):
        local.move_to(place("memory://normandy-tests/elsewhere/a.nv"))


def test_store_root(tmp_path: Path):
    assert store_root(tmp_path, None) == LocalPlace(tmp_path / ".normandy")
    assert store_root(tmp_path, "state/here") == LocalPlace(tmp_path / "state" / "here")
    assert store_root(tmp_path, "/abs/state") == LocalPlace("/abs/state")
    assert store_root(tmp_path, (tmp_path / "x").as_uri()) == LocalPlace(tmp_path / "x")
    pytest.importorskip("fsspec")
    assert str(store_root(tmp_path, "memory://bucket/p")) == "memory:///bucket/p"


def test_store_problems():
    for local in ("state", "/abs", "file:///tmp/x"):
        assert store_problem(local) is None
    pytest.importorskip("fsspec")
    assert store_problem("memory://b/p") is None
    assert "unknown protocol 'nope'" in (store_problem("nope://b/p") or "")
    try:
        import s3fs  # noqa: F401
    except ImportError:
        assert "Install s3fs" in (store_problem("s3://bucket/p") or "")


def test_a_local_store_never_imports_fsspec(tmp_path: Path):
    code = (
        "import sys\n"
        "from normandy_core.store import FlowStore, Variables, read_value\n"
        f"store = FlowStore({str(tmp_path)!r}, 'f')\n"
        "Variables(store.vars_dir, store.staging('k'))['x'] = 1\n"
        "store.commit('k')\n"
        "assert read_value(store.path('x')) == 1\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fsspec', 'dask')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_two_threads_of_a_task_writing_one_variable_never_collide(tmp_path):
    vars_ = Variables(tmp_path / "vars", tmp_path / "staging")
    errors: list[BaseException] = []

    def write(value: int) -> None:
        try:
            for _ in range(200):
                vars_.update("shared", [value] * 1000)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert vars_.get("shared") in ([n] * 1000 for n in range(4))
    assert sorted(p.name for p in (tmp_path / "staging").iterdir()) == ["shared.nv"]


# -- file names from task keys and flow names ----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["f.s.t", "f.s.t[eu]", "f.s.t[a/b]", "f.s.t[..]", "x" * FILE_PART_MAX, "f.s.t[é]"],
)
def test_file_part_keeps_a_name_that_fits(text: str):
    name = file_part(text)
    assert name == urllib.parse.quote(text, safe="[]=.-_,+@").replace("..", "%2E%2E")
    assert urllib.parse.unquote(name) == text  # reversible


@pytest.mark.parametrize(
    "text",
    [
        "f.s.t[" + "é" * 90 + "]",
        "f.s.t[" + "東京都" * 9 + "]",
        "f.s.t[/data/" + "/".join(["incoming"] * 10) + "/batch01.csv]",
        "x" * (FILE_PART_MAX + 1),
        "a" * 10_000,
        "f.s.t[" + "%" * 100 + "]",
    ],
)
def test_file_part_shortens_a_long_name_readably(text: str):
    name = file_part(text)
    assert FILE_PART_MAX < len(name.encode()) <= FILE_PART_MAX + 3
    head, _, digest = name.rpartition("~")
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert urllib.parse.unquote(head) == text[: len(urllib.parse.unquote(head))]  # its start
    assert len(head) > FILE_PART_MAX - 20
    assert "/" not in name and ".." not in name


def test_shortened_names_stay_unique():
    texts = [f"f.s.t[{'é' * 90}{i}]" for i in range(1000)]
    texts += ["f.s.t[" + "é" * 90 + "]", "f.s.t[" + "é" * 91 + "]"]
    names = {file_part(text) for text in texts}
    assert len(names) == len(texts)
    # a name kept as it is never equals a shortened one: they differ in length
    assert max(len(file_part("y" * n)) for n in range(FILE_PART_MAX + 1)) == FILE_PART_MAX


def test_staging_and_variables_of_long_names_fit_the_file_system(root: Place):
    flow = "nightly_" + "l" * 300
    store = FlowStore(root / "run", flow)
    key = f"{flow}.s.t[{'é' * 90}]"
    variables = _vars(store, key)
    variables["x"] = 1
    assert store.commit(key) == ["x"]
    assert FlowStore(root / "run", flow).names() == ["x"]
    assert _vars(store, f"{flow}.s2.t")["x"] == 1


# -- reused variables (SPEC 13) ------------------------------------------------------------


def test_a_linked_variable_reads_back_without_a_copy(root: Place):
    old, new, newer = (FlowStore(root / run, "f") for run in ("old", "new", "newer"))
    _vars(old, "f.s.t")["x"] = list(range(1000))
    old.commit("f.s.t")
    old.path("x").link_to(new.path("x"))
    new.path("x").link_to(newer.path("x"))  # a link of a link names the first file
    assert read_value(newer.path("x")) == list(range(1000))
    if isinstance(root, LocalPlace):  # a hard link: one file, three names
        inodes = {Path(str(s.path("x"))).stat().st_ino for s in (old, new, newer)}
        assert len(inodes) == 1
    else:  # a reference file naming the first
        assert newer.path("x").head(7) == b"NVREF1\n"
        assert str(newer.path("x").resolve()) == str(old.path("x"))
    reader = _vars(newer, "f.s.u")
    assert reader["x"][-1] == 999  # and what it read is known by the original's hash:
    assert reader.reads["x"][0] == content_hash(read_variable(old.path("x")))


def test_a_local_store_without_hard_links_writes_a_reference(tmp_path, monkeypatch):
    old = FlowStore(LocalPlace(tmp_path / "old"), "f")
    new = FlowStore(LocalPlace(tmp_path / "new"), "f")
    _vars(old, "f.s.t")["x"] = {"a": 1}
    old.commit("f.s.t")

    def no_links(*args: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr("os.link", no_links)
    old.path("x").link_to(new.path("x"))
    assert new.path("x").head(7) == b"NVREF1\n"
    assert read_value(new.path("x")) == {"a": 1}
    newer = FlowStore(LocalPlace(tmp_path / "newer"), "f")
    new.path("x").link_to(newer.path("x"))  # a reference of a reference names the file
    assert str(newer.path("x").resolve()) == str(old.path("x"))
    assert read_value(newer.path("x")) == {"a": 1}
    old.path("x").remove()
    assert new.path("x").exists() and not new.path("x").resolve().exists()


def test_a_stored_variable_is_found_through_its_reference_or_not_at_all(root: Place):
    """``stored()``: the variable file a place stands for (itself, or what its reference
    names), ``None`` where either is gone: what decides that a success's variables can
    still be bound (SPEC 13)."""
    old, new = (FlowStore(root / run, "f") for run in ("old", "new"))
    _vars(old, "f.s.t")["x"] = [1, 2]
    old.commit("f.s.t")
    assert str(old.path("x").stored()) == str(old.path("x"))
    assert old.path("missing").stored() is None
    new.path("x").write([reference(str(old.path("x")))])  # as a store without hard links
    assert str(new.path("x").stored()) == str(old.path("x"))
    old.path("x").remove()
    assert new.path("x").exists() and new.path("x").stored() is None
    assert old.path("x").stored() is None


def test_a_link_replaces_what_was_there_makes_its_folder_and_needs_its_source(tmp_path):
    """A reused variable linked where a file is already (a run resumed twice), into a
    folder not made yet, or from a file gone meanwhile: replaced, made, and an error."""
    source = LocalPlace(str(tmp_path)) / "old" / "x.nv"
    source.write([b"new"])
    held = LocalPlace(str(tmp_path)) / "held" / "deep" / "x.nv"
    source.link_to(held, resolved=True)  # no folder yet: made
    assert (tmp_path / "held" / "deep" / "x.nv").read_bytes() == b"new"
    (tmp_path / "held" / "deep" / "x.nv").unlink()
    (tmp_path / "held" / "deep" / "x.nv").write_bytes(b"stale")
    source.link_to(held)  # a file in the way: replaced by the link
    linked = tmp_path / "held" / "deep" / "x.nv"
    assert linked.read_bytes() == b"new"
    assert linked.stat().st_ino == (tmp_path / "old" / "x.nv").stat().st_ino
    with pytest.raises(FileNotFoundError):
        (LocalPlace(str(tmp_path)) / "old" / "gone.nv").link_to(held, resolved=True)
    assert linked.read_bytes() == b"new"  # what was there is left as it was
    moved = LocalPlace(str(tmp_path)) / "vars" / "f" / "x.nv"
    held.move_to(moved)  # into a folder not made yet
    assert (tmp_path / "vars" / "f" / "x.nv").read_bytes() == b"new" and not linked.exists()
    with pytest.raises(FileNotFoundError):
        held.move_to(moved)  # its source gone: an error, never a folder made for nothing


def test_a_local_head_reads_what_is_there_up_to_its_size(tmp_path):
    file = LocalPlace(str(tmp_path)) / "x.nv"
    file.write([b"a" * 10_000])
    assert file.head(4160) == b"a" * 4160 and file.head(20_000) == b"a" * 10_000
    (tmp_path / "empty.nv").write_bytes(b"")
    assert (LocalPlace(str(tmp_path)) / "empty.nv").head(64) == b""
    with pytest.raises(FileNotFoundError):
        (LocalPlace(str(tmp_path)) / "missing.nv").head(64)


@pytest.mark.parametrize(
    "text",
    ["/a/b", "/a//b", "/a/b/", "/a/./b", "/a/.", "/./a", "/", "//a", "/a/..", "/a/../b",
     "/.h", "/a/.h/b", "/a b/c", "/s.nv", "/~x", "/a/..b", "/a/b...", "/s3://x", "/é/ü",
     "a/b", "~/x", "./a"],
)  # fmt: skip
def test_a_local_path_is_the_place_pathlib_makes_of_it(text: str) -> None:
    """:func:`place` takes a path that pathlib would write the same as it is (a worker
    makes places of the orchestrator's paths for each task), any other as pathlib does."""
    made = place(text)
    assert isinstance(made, LocalPlace)
    assert str(made) == str(Path(text).expanduser()) and made.path == Path(text).expanduser()


@pytest.mark.parametrize("base", [".", "/", "a", "a/b", "/a/b", "a//b/", "./a", "//x"])
@pytest.mark.parametrize("name", ["x.nv", "f.s.fetch[%2Fdata]", ".h", "..", ".", "", "c/d", "~n"])
def test_a_local_place_joins_names_as_pathlib_does(base: str, name: str) -> None:
    """A local place keeps its path as text and joins a plain name without parsing it
    again: the text it gives (what travels to workers, what places compare by) is
    pathlib's, whatever the base and the name."""
    joined = LocalPlace(base) / name
    assert str(joined) == str(Path(base) / name)
    assert joined.path == Path(base) / name
    assert joined == LocalPlace(Path(base) / name) and hash(joined) == hash(
        LocalPlace(Path(base) / name)
    )
    assert joined.name == (Path(base) / name).name and joined.parent == LocalPlace(
        (Path(base) / name).parent
    )


def test_a_local_place_lists_links_moves_and_removes_real_files(tmp_path: Path) -> None:
    folder = LocalPlace(str(tmp_path)) / "vars"
    assert folder.names(".nv") == [] and not folder.exists()
    (folder / "b.nv").write([b"2"])
    (folder / "a.nv").write([b"1"])
    (folder / "c.txt").write([b"3"])
    (folder / "sub.nv").mkdir()
    assert folder.is_dir() and folder.names(".nv") == ["a.nv", "b.nv"]  # files only
    (folder / "a.nv").link_to(LocalPlace(str(tmp_path)) / "other" / "a.nv")
    linked = tmp_path / "other" / "a.nv"
    assert (
        linked.read_bytes() == b"1"
        and linked.stat().st_ino == (tmp_path / "vars" / "a.nv").stat().st_ino
    )
    (folder / "b.nv").move_to(LocalPlace(str(tmp_path)) / "moved" / "b.nv")
    assert (tmp_path / "moved" / "b.nv").read_bytes() == b"2" and folder.names(".nv") == ["a.nv"]
    (folder / "a.nv").copy_to(folder / "d.nv")
    assert bytes((folder / "d.nv").read()) == b"1" and (folder / "d.nv").head(10) == b"1"
    folder.remove()
    assert not folder.exists() and not (tmp_path / "vars").exists()
    (LocalPlace(str(tmp_path)) / "missing").remove()  # nothing there: nothing to do


@pytest.mark.parametrize(
    "text",
    [
        *(chr(c) for c in range(0x20, 0x180)),
        "f.s.fetch[3]",
        "f.s.a..b",
        "..",
        "x" * FILE_PART_MAX,
        "x" * (FILE_PART_MAX + 1),
        "é.s.t",
        "f.s.t[~k=v,+@]",
    ],
)
def test_a_plain_file_part_is_what_quoting_gives(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """:func:`file_part` leaves a plain name (most task keys) as it is without quoting it:
    the same name quoting gives, character by character."""
    import re

    from normandy_core.store import _flow

    fast = file_part(text)
    monkeypatch.setattr(_flow, "_PLAIN", re.compile(r"(?!)"))  # never plain: always quoted
    assert fast == file_part(text)
