"""Normandy's pytest plugin (entry point group ``pytest11``, name ``normandy``): the
fixtures ``run_process`` and ``normandy_project``, and, when a test that used them
fails, a report section per process run (its error and log tail) and per command.

pytest loads this module at the start of every session of an environment where Normandy
is installed: it imports nothing of Normandy's until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from normandy_core.testing import NormandyProject, ProcessResult, ProcessRunner  # noqa: F401

_PROCESSES = pytest.StashKey["list[ProcessResult]"]()
_NOTES = pytest.StashKey["list[str]"]()
_PROJECTS = pytest.StashKey["list[NormandyProject]"]()


@pytest.fixture
def run_process(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProcessRunner]:
    """``run_process(name, *, params=None, inputs=None, env=None, confs=None,
    credentials=None, project=None, entry=None)`` runs the process registered as
    ``name`` in the test's process, as a task of a run, and returns a ``ProcessResult``
    (``value``, ``outputs``, ``records``, ``stdout``, ``stderr``, ``error``). The
    project under test (upward of the test file) gives its entry's options."""
    from normandy_core.testing._process import ProcessRunner

    runner = ProcessRunner(tmp_path_factory.mktemp("normandy-process"), request.path.parent)
    request.node.stash[_PROCESSES] = runner.results
    request.node.stash[_NOTES] = runner.notes
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture
def normandy_project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., NormandyProject]:
    """``normandy_project(path=None, env=None)``: a temporary copy of the project at
    ``path`` (by default the project under test, upward of the test file), whose
    ``.run(*args)`` runs the real ``normandy run --json`` in it and ``.load(name,
    flow=None)`` reads a variable of its last run."""
    projects: list[NormandyProject] = []
    request.node.stash[_PROJECTS] = projects

    def make(
        path: str | Path | None = None, env: Mapping[str, str] | None = None
    ) -> NormandyProject:
        from normandy_core.config import CONF_FILE
        from normandy_core.errors import ProjectNotFoundError
        from normandy_core.testing._project import copy_project
        from normandy_core.testing._where import find_upward

        here = request.path.parent
        source = Path(path) if path is not None else find_upward(here, str(CONF_FILE))
        if source is None or not (source / CONF_FILE).is_file():
            where = source if source is not None else f"{request.path.parent} or any folder above"
            raise ProjectNotFoundError(
                f"no {CONF_FILE} in {where}: pass the project's folder, "
                "normandy_project(path)"
            )
        project = copy_project(source, tmp_path_factory.mktemp("normandy-project"), env)
        projects.append(project)
        return project

    return make


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        shown = getattr(call.excinfo.value, "result", None) if call.excinfo else None
        for result in item.stash.get(_PROCESSES, ()):
            if result is shown:  # a ProcessFailed: its message is this already
                continue
            report.sections.append((f"normandy: process {result.name}", result.describe()))
        notes = item.stash.get(_NOTES, ())
        if notes:
            report.sections.append(("normandy: modules imported again", "\n".join(notes)))
        for project in item.stash.get(_PROJECTS, ()):
            for ended in project.results:
                report.sections.append((f"normandy {' '.join(ended.args)}", ended.describe()))
    return report
