"""The state folder's kept files (:mod:`normandy_core._kept`): an entry stands only for
the stamp it was worked out from; a file of another format, damaged or unwritable is
worked around, never an error."""

from __future__ import annotations

import json
from pathlib import Path

from normandy_core._kept import KeptFile


def test_an_entry_stands_for_its_stamp_only_and_outlives_the_command(tmp_path: Path):
    path = tmp_path / "kept.json"
    kept = KeptFile(path, 1)
    assert kept.get("a", [1, 2]) is None
    kept.put("a", ["x"], [1, 2])
    kept.put("b", True)
    kept.save()
    again = KeptFile(path, 1)
    assert again.get("a", [1, 2]) == ["x"]
    assert again.get("a", [1, 3]) is None  # what it came from changed
    assert again.get("b") is True
    assert KeptFile(path, 2).get("b") is None  # another format: ignored


def test_the_most_recently_used_entries_are_kept_up_to_the_limit(tmp_path: Path):
    path = tmp_path / "kept.json"
    kept = KeptFile(path, 1, limit=2)
    for key in ("a", "b", "c"):
        kept.put(key, True)
    kept.save()
    assert json.loads(path.read_text())["entries"].keys() == {"b", "c"}


def test_nothing_written_where_nothing_changed(tmp_path: Path):
    path = tmp_path / "kept.json"
    KeptFile(path, 1).save()
    assert not path.exists()
    memory = KeptFile(None, 1)  # no state folder: kept for this command only
    memory.put("a", 1)
    memory.save()
    assert memory.get("a") == 1


def test_a_file_that_cannot_be_written_is_worked_around(tmp_path: Path):
    (tmp_path / "not-a-folder").write_text("")
    kept = KeptFile(tmp_path / "not-a-folder" / "kept.json", 1)  # every write fails
    assert kept.get("a") is None
    kept.put("a", 1)
    kept.save()  # no error: worked out again next time
    assert kept.get("a") == 1


def test_a_damaged_file_is_ignored(tmp_path: Path):
    path = tmp_path / "kept.json"
    path.write_text('{"version": 1, "entries": {"a": "not a pair", "b": [null, 2]}}')
    kept = KeptFile(path, 1)
    assert kept.get("a") is None and kept.get("b") == 2
    path.write_text("{not json")
    assert KeptFile(path, 1).get("b") is None
