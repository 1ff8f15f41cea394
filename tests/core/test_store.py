"""The variables storage (SPEC 5): value files, names, a flow's commit/discard, ``pipe.vars``."""

from __future__ import annotations

import mmap
import threading
from pathlib import Path

import pytest

from normandy_core.store import FlowStore, Variables, check_name, read_value, write_value

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
def test_round_trip_plain_values(tmp_path: Path, value):
    path = tmp_path / "v.nv"
    write_value(path, "v", value)
    assert read_value(path) == value


def test_write_is_atomic_and_overwrites(tmp_path: Path):
    path = tmp_path / "sub" / "v.nv"
    write_value(path, "v", "first")
    write_value(path, "v", "second")
    assert read_value(path) == "second"
    assert [p.name for p in path.parent.iterdir()] == ["v.nv"]  # no temporary left


def test_not_a_variable_file(tmp_path: Path):
    path = tmp_path / "junk.nv"
    path.write_bytes(b"hello world, not a variable")
    with pytest.raises(ValueError, match="not a Normandy variable file"):
        read_value(path)
    empty = tmp_path / "empty.nv"
    empty.write_bytes(b"")
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
def test_numpy_array_layouts(tmp_path: Path, kind):
    np = pytest.importorskip("numpy")
    value = {
        "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "strided": np.arange(30)[::3],
        "empty": np.empty((0, 3)),
        "2d-int": np.arange(12, dtype="int32").reshape(4, 3),
        "in-a-dict": {"x": np.arange(5), "y": [np.ones(3, dtype="uint8"), "z"]},
    }[kind]
    path = tmp_path / "a.nv"
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


def test_many_buffers_are_aligned(tmp_path: Path):
    np = pytest.importorskip("numpy")
    values = [np.arange(n, dtype="int8") for n in (1, 3, 7, 65, 130)]
    path = tmp_path / "a.nv"
    write_value(path, "a", values)
    back = read_value(path)
    assert all(np.array_equal(a, b) for a, b in zip(back, values))
    for array in back:
        if array.size:
            assert array.ctypes.data % 64 == 0


def test_pandas_dataframe_round_trip(tmp_path: Path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"id": [1, 2, 3], "foo": [1.5, 2.5, None], "bar": ["a", "b", "c"]})
    path = tmp_path / "df.nv"
    write_value(path, "df", frame)
    back = read_value(path)
    pd.testing.assert_frame_equal(back, frame)


@pytest.mark.parametrize(
    "value",
    [lambda: 1, threading.Lock(), {"nested": [threading.Lock()]}],
    ids=["lambda", "lock", "nested-lock"],
)
def test_unpicklable_value_names_the_variable(tmp_path: Path, value):
    path = tmp_path / "bad.nv"
    with pytest.raises(TypeError, match="variable 'my_var' cannot be stored"):
        write_value(path, "my_var", value)
    assert not path.exists()
    assert not list(tmp_path.iterdir())


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


def test_commit_makes_a_tasks_writes_visible(tmp_path: Path):
    store = FlowStore(tmp_path / "run", "f")
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


def test_discard_drops_a_tasks_writes(tmp_path: Path):
    store = FlowStore(tmp_path / "run", "f")
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


def test_commit_of_a_task_without_writes(tmp_path: Path):
    store = FlowStore(tmp_path / "run", "f")
    assert store.commit("f.s.quiet") == []
    assert store.names() == []


def test_flows_are_separate(tmp_path: Path):
    run_dir = tmp_path / "run"
    one, two = FlowStore(run_dir, "one"), FlowStore(run_dir, "two")
    _vars(one, "one.s.t")["x"] = 1
    one.commit("one.s.t")
    assert "x" not in _vars(two, "two.s.t")
    assert two.names() == []


def test_store_path_checks_names(tmp_path: Path):
    store = FlowStore(tmp_path / "run", "f")
    with pytest.raises(ValueError):
        store.path("../escape")


def test_staging_folders_are_distinct_per_task(tmp_path: Path):
    store = FlowStore(tmp_path / "run", "f")
    keys = ["f.s.t[a/b]", "f.s.t[a_b]", "f.s.t[a%2Fb]", "f.s.t[a\\b]", "f.s.t[..]", "f.s.t[.]"]
    folders = [store.staging(key) for key in keys]
    assert len(set(folders)) == len(keys)
    for folder in folders:
        assert folder.parent == store.staging_root


def test_staging_stays_inside_the_flows_staging_folder(tmp_path: Path):
    store = FlowStore(tmp_path / "run", "f")
    folder = store.staging("f.s.t[../../../x]")
    assert folder.parent == store.staging_root


# -- pipe.vars ----------------------------------------------------------------------------


def test_own_staged_writes_are_read_before_committed_ones(tmp_path: Path):
    store = FlowStore(tmp_path / "run", "f")
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


def test_missing_variable(tmp_path: Path):
    store = FlowStore(tmp_path / "run", "f")
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


def test_invalid_names_raise_value_error(tmp_path: Path):
    task = _vars(FlowStore(tmp_path / "run", "f"), "f.s.t")
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
    assert not (tmp_path / "x.nv").exists()
    assert not list((tmp_path / "run").rglob("*.nv"))


def test_unpicklable_through_pipe_vars(tmp_path: Path):
    task = _vars(FlowStore(tmp_path / "run", "f"), "f.s.t")
    with pytest.raises(TypeError, match="'lock'"):
        task["lock"] = threading.Lock()
    assert "lock" not in task


def test_numpy_through_pipe_vars(tmp_path: Path):
    np = pytest.importorskip("numpy")
    store = FlowStore(tmp_path / "run", "f")
    _vars(store, "f.s1.t")["arr"] = np.arange(100_000, dtype="int64")
    store.commit("f.s1.t")
    back = _vars(store, "f.s2.t")["arr"]
    assert np.array_equal(back, np.arange(100_000, dtype="int64"))
