"""Datasets in reuse, in one process (``normandy_core/datasets/_reuse.py``): what a trace
notes of a dataset a task loaded or saved, and each check that decides whether that
still holds — every one of them has a case here that fails without it."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from normandy_core.datasets import DatasetConfig
from normandy_core.datasets._base import FileDataset
from normandy_core.datasets._reuse import NO_HASH, DatasetChecks, noted
from normandy_core.datasets._runtime import DatasetCall
from normandy_core.datasets._worker import TaskDatasets
from normandy_core.fingerprint import Keyed
from normandy_core.trace import DATASET, DATASET_WRITTEN
from tests.core.test_datasets import call

KEYED = Keyed(b"k" * 32)


def loaded(c: DatasetCall, run_id: str = "R1") -> str:
    """What a trace notes of a task's load of ``c``."""
    task = TaskDatasets([c], run_id)
    task.load(c)
    [access] = task.accesses
    return noted(access, DatasetChecks({c.name: c}, KEYED).declared(c.name), KEYED)


def saved(c: DatasetCall, value: Any, run_id: str = "R1") -> str:
    """What a trace notes of a task's save of ``value`` to ``c``."""
    task = TaskDatasets([c], run_id)
    task.stage({c.name: value})
    task.commit()
    [access] = task.accesses
    return noted(access, DatasetChecks({c.name: c}, KEYED).declared(c.name), KEYED)


def checks(*calls: DatasetCall, unsure: Any = None) -> DatasetChecks:
    return DatasetChecks({c.name: c for c in calls}, KEYED, unsure)


def write(path: Path, text: str, mtime_ns: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.fixture
def numbers(tmp_path: Path) -> DatasetCall:
    write(tmp_path / "numbers.json", "[1, 2, 3]")
    return call("numbers", str(tmp_path / "numbers.json"))


def test_an_untouched_dataset_holds_without_a_byte_of_it_read(numbers, monkeypatch) -> None:
    seen = loaded(numbers)

    def no_reading(self: FileDataset) -> str:
        raise AssertionError("the content was read: the stamp alone should have told")

    monkeypatch.setattr(FileDataset, "content_hash", no_reading)
    assert checks(numbers).read("numbers", seen)


def test_a_dataset_touched_but_unchanged_holds_by_its_content(numbers) -> None:
    seen = loaded(numbers)
    path = Path(numbers.config.path or "")
    os.utime(path, ns=(1, 1))  # another time: its stamp changed, not its content
    assert checks(numbers).read("numbers", seen)


def test_an_edited_dataset_is_changed(numbers) -> None:
    seen = loaded(numbers)
    write(Path(numbers.config.path or ""), "[1, 2, 4]")
    assert not checks(numbers).read("numbers", seen)


def test_a_dataset_rewritten_with_its_size_and_modification_time_put_back_is_changed(
    numbers,
) -> None:
    path = Path(numbers.config.path or "")
    before = path.stat().st_mtime_ns
    seen = loaded(numbers)
    write(path, "[1, 2, 4]", mtime_ns=before)  # same size, same time: inode/ctime tell
    assert path.stat().st_size == len("[1, 2, 3]")
    assert not checks(numbers).read("numbers", seen)


def test_a_dataset_declared_otherwise_is_changed(numbers, tmp_path: Path) -> None:
    seen = loaded(numbers)
    config = replace(numbers.config, load_args={"parse_float": "decimal"})
    assert not checks(replace(numbers, config=config)).read("numbers", seen)
    other = tmp_path / "other.json"
    write(other, "[1, 2, 3]")  # the same content elsewhere: another dataset all the same
    moved = replace(numbers, config=replace(numbers.config, path=str(other)))
    assert not checks(moved).read("numbers", seen)


def test_a_dataset_no_longer_declared_or_gone_is_changed(numbers) -> None:
    seen = loaded(numbers)
    assert not checks().read("numbers", seen)
    Path(numbers.config.path or "").unlink()
    assert not checks(numbers).read("numbers", seen)


def test_a_dataset_a_task_running_first_writes_is_unsure(numbers) -> None:
    seen = loaded(numbers)
    asked: list[tuple[str, str]] = []

    def unsure(kind: str, name: str) -> bool:
        asked.append((kind, name))
        return True

    assert not checks(numbers, unsure=unsure).read("numbers", seen)
    assert not checks(numbers, unsure=unsure).written("numbers", seen)
    assert asked == [(DATASET, "numbers"), (DATASET_WRITTEN, "numbers")]


def test_a_saved_dataset_holds_until_deleted_or_edited(tmp_path: Path) -> None:
    out = call("report", str(tmp_path / "out" / "report.json"))
    seen = saved(out, {"rows": 3})
    assert checks(out).written("report", seen)
    path = tmp_path / "out" / "report.json"
    write(path, json.dumps({"rows": 4}))
    assert not checks(out).written("report", seen)
    seen = saved(out, {"rows": 3})
    path.unlink()
    assert not checks(out).written("report", seen)


def test_a_versioned_read_holds_while_the_version_a_load_picks_is_the_one_read(
    tmp_path: Path,
) -> None:
    model = call("model", str(tmp_path / "model.json"), versioned=True)
    written = saved(model, {"w": 1}, run_id="2026-01-01T00.00.00.000Z")
    seen = loaded(model)
    assert checks(model).read("model", seen)
    saved(model, {"w": 2}, run_id="2026-01-02T00.00.00.000Z")  # a newer version
    assert not checks(model).read("model", seen)
    assert checks(model).written("model", written)  # what was saved is still there
    pinned = replace(model, version="2026-01-01T00.00.00.000Z")  # --load-version
    assert checks(pinned).read("model", seen)


def test_a_dataset_whose_stamp_moved_and_whose_content_was_not_hashed_is_changed(
    numbers,
) -> None:
    declared, version, size, mtime, etag, _ = json.loads(loaded(numbers))
    unhashed = json.dumps([declared, version, size, mtime, etag, NO_HASH])
    assert checks(numbers).read("numbers", unhashed)
    os.utime(Path(numbers.config.path or ""), ns=(1, 1))
    assert not checks(numbers).read("numbers", unhashed)


def test_a_dataset_type_whose_code_changed_is_changed(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "numbers.json"
    write(path, "[1]")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "dsreuse_types.py").write_text(
        "import json\nfrom normandy_core.datasets import FileDataset\n\n\n"
        "class J(FileDataset):\n    def read(self, f):\n        return json.loads(f.read())\n\n"
        "    def write(self, data, f):\n        f.write(json.dumps(data).encode())\n"
    )
    config = DatasetConfig(name="numbers", type="dsreuse_types:J", path=str(path))
    mine = DatasetCall("numbers", "dsreuse_types:J", "dsreuse_types:J", "project", config)
    seen = loaded(mine)
    assert checks(mine).read("numbers", seen)
    (tmp_path / "dsreuse_types.py").write_text(
        "import json\nfrom normandy_core.datasets import FileDataset\n\n\n"
        "class J(FileDataset):\n    def read(self, f):\n        return json.loads(f.read())[:1]\n\n"
        "    def write(self, data, f):\n        f.write(json.dumps(data).encode())\n"
    )
    os.utime(tmp_path / "dsreuse_types.py", ns=(1, 1))
    assert not checks(mine).read("numbers", seen)
