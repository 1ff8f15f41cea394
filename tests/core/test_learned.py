"""Imports learned (SPEC 20), the worker's side: the modules a task imported, as its
worker reports them, and those imported for it ahead that it keeps."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from normandy_core._learned import learned, snapshot
from normandy_core.history import History


@pytest.fixture
def package(tmp_path: Path, module_name: Callable[[str], str]) -> Iterator[str]:
    """A package with a public and a private submodule, importable, not imported."""
    name = module_name("learn")
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "public.py").write_text("from . import _private\n")
    (folder / "_private.py").write_text("import json\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        for loaded in [m for m in sys.modules if m.split(".")[0] == name]:
            del sys.modules[loaded]


def test_a_task_s_new_modules_top_level_first_then_public_submodules(package: str) -> None:
    before = snapshot()
    assert learned(before) == ()
    importlib.import_module(f"{package}.public")
    # what its package imports (the private one, the standard library) is not listed
    assert learned(before) == (package, f"{package}.public")
    assert learned(snapshot()) == ()  # what was there before it is not its


def test_a_module_imported_ahead_stays_learned_while_it_is_there(package: str) -> None:
    """Imported for the task by the fork server, a module is no longer imported inside
    the task: kept from what it was given, it is not forgotten on the next run (which
    would then pay its import again)."""
    importlib.import_module(package)
    before = snapshot()
    assert learned(before, [package, "nd_not_there_at_all"]) == (package,)


def test_the_history_keeps_each_task_s_latest(tmp_path: Path) -> None:
    history = History(tmp_path / ".normandy")
    try:
        history.learn("f.s.a", "r1", ["sklearn", "sklearn.ensemble"])
        history.learn("f.s.b", "r1", [])
        assert history.learned() == {"f.s.a": ("sklearn", "sklearn.ensemble")}
        history.learn("f.s.a", "r2", ["pandas"])
        assert history.learned(["f.s.a", "f.s.c"]) == {"f.s.a": ("pandas",)}
        assert history.learned(["f.s.c"]) == {}
    finally:
        history.close()
