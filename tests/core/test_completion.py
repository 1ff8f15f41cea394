"""Names for shell completion, read cheaply from a project (SPEC 14)."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

from normandy_core.completion import ProjectNames, project_names

CONF = """
confs:
  plugins: [nd_completion_plugin_never_imported]
  processes:
    local.load: nd_completion_local:load
  envs:
    dev: {}
    prod:
      credentials: conf/missing.yml
flows:
  nightly:
    tags: [default, nightly]
    steps:
      extract:
        - pkg.extract
        - pkg.read_db: {params: {table: users}}
      load:
        local.load:
          retries: 2
        audit:
  weekly:
    tags: [weekly, default]
    steps:
      report: [pkg.report]
"""


def test_names_of_a_project(write_conf, project_dir: Path) -> None:
    root = write_conf(CONF)
    (root / "setup.cfg").write_text(
        "[options.entry_points]\nnormandy.processes =\n    own.step = own.mod:step\n"
    )
    deeper = root / "notebooks"
    deeper.mkdir()
    names = project_names(deeper, installed=False)
    assert names == ProjectNames(
        tags=("default", "nightly", "weekly"),
        flows=("nightly", "weekly"),
        envs=("dev", "prod"),
        processes=(
            "audit",
            "local.load",
            "own.step",
            "pkg.extract",
            "pkg.read_db",
            "pkg.report",
        ),
    )
    # nothing imported: neither the plugin nor the project's processes
    assert not any(m.startswith("nd_completion") for m in sys.modules)


def test_installed_processes_come_with_installed(write_conf) -> None:
    write_conf(CONF)
    installed = {ep.name for ep in metadata.entry_points(group="normandy.processes")}
    names = project_names()
    assert installed <= set(names.processes)
    assert "pkg.extract" in names.processes


@pytest.mark.parametrize(
    "text",
    [
        "confs: [\n",  # a syntax error
        "- a list\n",
        "confs: {envs: [dev]}\nflows: {f: {tags: 3, steps: [x]}, g: null}\n",
        "confs:\n  processes: [x]\nflows:\n  f:\n    steps: {s: [{a: 1, b: 2}, 3, null]}\n",
    ],
)
def test_a_broken_project_completes_what_it_can(write_conf, text: str) -> None:
    write_conf(text)
    names = project_names(installed=False)  # never raises
    assert names.envs == () and names.tags == ()


def test_outside_a_project(tmp_path: Path) -> None:
    assert project_names(tmp_path, installed=False) == ProjectNames()
