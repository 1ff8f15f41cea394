"""Datasets in one process (``normandy_core/datasets``): a file dataset saved atomically
on a local disk and behind fsspec (``memory://``), its cheap stamp and content hash,
versions laid out as ``PATH/RUN_ID/NAME``, and a task's datasets as the worker loads,
stages, commits and discards them."""

from __future__ import annotations

import builtins
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest
import xxhash

from normandy_core.binding import MissingInput, Parameter, Signature, input_values
from normandy_core.datasets import DatasetConfig, FileDataset, Stamp
from normandy_core.datasets._files import FsspecFiles, files_for, resolve
from normandy_core.datasets._runtime import DatasetCall
from normandy_core.datasets._versions import Versions, version_path
from normandy_core.datasets._worker import DatasetUseError, MissingDataset, TaskDatasets

TARGET = f"{__name__}:JSONFile"


class JSONFile(FileDataset):
    """A test type: a value as JSON; ``{"fail": true}`` fails half-way through writing."""

    def read(self, file: IO[bytes]) -> Any:
        return json.loads(file.read())

    def write(self, data: Any, file: IO[bytes]) -> None:
        file.write(b'{"partial": ')
        if isinstance(data, dict) and data.get("fail"):
            raise ValueError("the writer failed half-way")
        file.seek(0)
        file.truncate()
        file.write(json.dumps(data).encode())


def dataset(path: str, name: str = "d") -> JSONFile:
    return JSONFile(DatasetConfig(name=name, type="jsonfile", path=path))


def call(
    name: str, path: str, *, versioned: bool = False, version: str | None = None
) -> DatasetCall:
    config = DatasetConfig(name=name, type="jsonfile", path=path)
    return DatasetCall(name, "jsonfile", TARGET, "project", config, versioned, version)


@pytest.fixture
def memory() -> Iterator[str]:
    """A folder of fsspec's in-memory file system, emptied afterwards."""
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    root = f"/normandy-test-{os.getpid()}-{id(fs)}"
    yield f"memory://{root}"
    if fs.exists(root):
        fs.rm(root, recursive=True)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- a file dataset -----------------------------------------------------------------------


def test_a_save_is_atomic_and_a_failed_one_leaves_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "value.json"
    data = dataset(str(target))
    data.save({"n": 1})  # the folder is made
    assert json.loads(target.read_text()) == {"n": 1}
    with pytest.raises(ValueError, match="half-way"):
        data.save({"fail": True})
    assert json.loads(target.read_text()) == {"n": 1}
    assert listing(target.parent) == ["value.json"]  # no temporary file left


def test_a_staged_save_is_seen_only_once_committed(tmp_path: Path) -> None:
    target = tmp_path / "value.json"
    data = dataset(str(target))
    data.save({"n": 1})
    staged = data.stage({"n": 2})
    assert json.loads(target.read_text()) == {"n": 1}  # not yet
    assert staged.content_hash == xxhash.xxh3_128(json.dumps({"n": 2}).encode()).hexdigest()
    assert not staged.deferred
    staged.commit()
    assert json.loads(target.read_text()) == {"n": 2}
    data.stage({"n": 3}).discard()
    assert json.loads(target.read_text()) == {"n": 2}
    assert listing(tmp_path) == ["value.json"]


def test_the_stamp_is_cheap_and_the_hash_is_of_the_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "value.json"
    data = dataset(str(target))
    assert data.stamp() is None and not data.exists() and data.content_hash() is None
    data.save([1, 2, 3])
    content = target.read_bytes()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"stamp() opened a file: {args}")

    with monkeypatch.context() as patched:  # a stamp reads no content
        patched.setattr(builtins, "open", refuse)
        patched.setattr(io, "open", refuse)
        stamp = data.stamp()
    info = os.stat(target)
    # a local file's "entity tag": its inode, change and modification times
    change = f"{info.st_ino}:{info.st_ctime_ns}:{info.st_mtime_ns}"
    assert stamp == Stamp(len(content), info.st_mtime, change) and stamp.known
    assert data.content_hash() == xxhash.xxh3_128(content).hexdigest()
    os.utime(target, (1, 1))
    assert data.stamp() != stamp  # touched: the stamp says it may have changed


def test_a_dataset_behind_fsspec_in_memory(memory: str) -> None:
    data = dataset(f"{memory}/sub/value.json")
    files, inner = data.files
    assert isinstance(files, FsspecFiles) and files.renames and files.cheap
    assert data.stamp() is None
    data.save({"n": 1})
    with pytest.raises(ValueError):
        data.save({"fail": True})
    assert data.load() == {"n": 1}
    assert [p.rsplit("/", 1)[-1] for p in files.fs.ls(files.parent(inner), detail=False)] == [
        "value.json"
    ]
    stamp = data.stamp()
    assert stamp is not None and stamp.size == len(b'{"n": 1}')
    assert data.content_hash() == xxhash.xxh3_128(b'{"n": 1}').hexdigest()


def test_on_an_object_store_the_file_is_written_in_place_at_commit(memory: str) -> None:
    """No rename there (s3, gcs…): an upload is published whole, at commit."""
    data = dataset(f"{memory}/value.json")
    files, inner = data.files
    data._files = (FsspecFiles(files.fs, "s3"), inner)  # memory, behaving as an object store
    staged = data.stage({"n": 1})
    assert staged.deferred and data.stamp() is None
    staged.commit()
    assert data.load() == {"n": 1}
    assert data.content_hash() is None  # reading an object store again is not cheap


def test_paths_are_relative_to_the_project_root_and_urls_kept() -> None:
    assert resolve("data/x.csv", "/proj") == "/proj/data/x.csv"
    assert resolve("/abs/x.csv", "/proj") == "/abs/x.csv"
    assert resolve("file:///abs/x.csv", "/proj") == "/abs/x.csv"
    assert resolve("s3://bucket/x.csv", "/proj") == "s3://bucket/x.csv"
    files, inner = files_for("/proj/data/x.csv")
    assert type(files).__name__ == "Files" and inner == "/proj/data/x.csv"


@pytest.mark.parametrize(
    ("info", "stamp"),
    [
        ({"size": 3, "mtime": 12.5}, Stamp(3, 12.5, None)),
        (
            {"size": 3, "LastModified": datetime(2026, 1, 2, tzinfo=UTC), "ETag": '"ab"'},
            Stamp(3, datetime(2026, 1, 2, tzinfo=UTC).timestamp(), "ab"),
        ),
        ({"size": 3, "updated": "2026-01-02T00:00:00Z", "md5Hash": "xy=="}, None),
        ({"type": "file"}, Stamp()),
    ],
)
def test_a_stamp_from_what_fsspec_info_says(info: dict[str, Any], stamp: Stamp | None) -> None:
    got = Stamp.of(info)
    if stamp is None:  # GCS's words
        assert got.size == 3 and got.etag == "xy==" and got.mtime is not None
    else:
        assert got == stamp
    assert got.known == (info != {"type": "file"})


# -- versions -----------------------------------------------------------------------------


def test_versions_are_laid_out_as_path_run_id_name(tmp_path: Path) -> None:
    base = str(tmp_path / "models" / "regressor.json")
    versions = Versions(base)
    assert versions.latest() is None and versions.all() == []
    for run in ("20260101-000000.000-aaaa", "20260102-000000.000-bbbb"):
        dataset(version_path(base, run)).save({"run": run})
    (Path(base) / "20260103-000000.000-cccc").mkdir()  # a version folder left empty
    assert version_path(base, "R") == f"{base}/R/regressor.json"
    assert versions.all() == ["20260101-000000.000-aaaa", "20260102-000000.000-bbbb"]
    assert versions.latest() == "20260102-000000.000-bbbb"
    assert versions.has("20260101-000000.000-aaaa") and not versions.has("nope")


# -- a task's datasets, in the worker -------------------------------------------------------


def test_an_input_named_like_a_dataset_is_loaded_and_the_read_noted(tmp_path: Path) -> None:
    path = tmp_path / "numbers.json"
    dataset(str(path)).save([1, 2])
    task = TaskDatasets([call("numbers", str(path))], "RUN")
    read = task.reader(lambda name: f"variable {name}")
    signature = Signature((), (Parameter("numbers", False), Parameter("other", False)))
    assert input_values(signature, {}, read).named == {"numbers": [1, 2], "other": "variable other"}
    (access,) = task.accesses
    assert (access.name, access.direction, access.location) == ("numbers", "read", str(path))
    assert access.size == path.stat().st_size and access.mtime == path.stat().st_mtime
    assert access.hash == xxhash.xxh3_128(path.read_bytes()).hexdigest()


def test_a_missing_input_dataset_uses_the_default_or_fails_in_normandy_s_words(
    tmp_path: Path,
) -> None:
    task = TaskDatasets([call("numbers", str(tmp_path / "missing.json"))], "RUN")
    read = task.reader(lambda name: None)
    assert input_values(Signature((), (Parameter("numbers", True),)), {}, read).named == {}
    with pytest.raises(MissingInput, match=r"input dataset 'numbers' \(jsonfile .*missing.json\) "
                       "cannot be read: it does not exist"):
        input_values(Signature((), (Parameter("numbers", False),)), {}, read)
    with pytest.raises(MissingDataset):
        task.load(call("numbers", str(tmp_path / "missing.json"), versioned=True))


def test_outputs_are_staged_then_committed_together_and_noted(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    dataset(str(a)).save("old a")
    task = TaskDatasets([call("a", str(a)), call("b", str(b))], "RUN")
    rest = task.stage({"a": "new a", "b": "new b", "var": 1}, ["a", "b", "var"])
    assert rest == {"var": 1}
    assert json.loads(a.read_text()) == "old a" and not b.exists()
    task.commit(["var"])
    assert json.loads(a.read_text()) == "new a" and json.loads(b.read_text()) == "new b"
    assert [(x.name, x.direction) for x in task.accesses] == [("a", "write"), ("b", "write")]
    assert task.accesses[0].hash == xxhash.xxh3_128(a.read_bytes()).hexdigest()
    assert task.accesses[0].size == a.stat().st_size


def test_a_failed_save_leaves_every_dataset_of_the_task_as_it_was(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    dataset(str(a)).save("old a")
    dataset(str(b)).save("old b")
    task = TaskDatasets([call("a", str(a)), call("b", str(b))], "RUN")
    with pytest.raises(ValueError, match="half-way"):
        task.stage({"a": "new a", "b": {"fail": True}})
    task.discard()  # as run_task does when the task fails
    assert json.loads(a.read_text()) == "old a" and json.loads(b.read_text()) == "old b"
    assert listing(tmp_path) == ["a.json", "b.json"] and task.accesses == []


def test_a_variable_named_like_a_dataset_or_a_dataset_output_not_returned_is_refused(
    tmp_path: Path,
) -> None:
    task = TaskDatasets([call("a", str(tmp_path / "a.json"))], "RUN", names={"a", "elsewhere"})
    with pytest.raises(DatasetUseError, match=r"wrote the variable 'elsewhere' through pipe\.vars"):
        task.commit(["elsewhere"])
    with pytest.raises(DatasetUseError, match=r"its output 'a' is a dataset .*return its value"):
        task.stage({}, ["a"])  # a process that returned None, having written pipe.vars["a"]


def test_a_versioned_dataset_is_saved_under_the_run_and_loaded_at_its_latest(
    tmp_path: Path,
) -> None:
    base = str(tmp_path / "model.json")
    for run in ("20260101-000000.000-aaaa", "20260102-000000.000-bbbb"):
        task = TaskDatasets([call("model", base, versioned=True)], run)
        task.stage({"model": run})
        task.commit()
        assert task.accesses[0].version == run
        assert task.accesses[0].location == version_path(base, run)
    latest = TaskDatasets([call("model", base, versioned=True)], "R3")
    assert latest.load(latest.calls["model"]) == "20260102-000000.000-bbbb"
    chosen = call("model", base, versioned=True, version="20260101-000000.000-aaaa")
    older = TaskDatasets([chosen], "R3")
    assert older.load(chosen) == "20260101-000000.000-aaaa"
    assert older.accesses[0].version == "20260101-000000.000-aaaa"
