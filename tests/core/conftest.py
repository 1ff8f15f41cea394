"""Fixtures for the core unit tests: temporary projects, configs and importable modules.

Test modules take these as fixtures rather than importing them from this module.
"""

from __future__ import annotations

import importlib
import io
import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from normandy_core.config import ProjectConfig, read_config
from normandy_core.errors import Problem

_counter = itertools.count()

WriteConf = Callable[..., Path]
LoadConf = Callable[..., "tuple[ProjectConfig | None, list[Problem]]"]


def yaml_text(text: str) -> str:
    """Dedented YAML whose first line is line 1 of the file."""
    return textwrap.dedent(text).lstrip("\n")


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root; the current folder, so problems name ``pipeline/pipeline_conf.yml``."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def write_conf(project_dir: Path) -> WriteConf:
    """``write_conf(yaml)`` writes ``pipeline/pipeline_conf.yml`` (dedented), returns the root."""

    def write(text: str, root: Path | None = None) -> Path:
        root = root or project_dir
        file = root / "pipeline" / "pipeline_conf.yml"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(yaml_text(text), encoding="utf-8")
        return root

    return write


@pytest.fixture
def load_conf(write_conf: WriteConf) -> LoadConf:
    """``load_conf(yaml, environ={})`` -> ``(config, problems)``; never reads ``os.environ``."""

    def load(
        text: str, environ: Mapping[str, str] | None = None
    ) -> tuple[ProjectConfig | None, list[Problem]]:
        return read_config(write_conf(text), {} if environ is None else dict(environ))

    return load


@pytest.fixture
def good_conf(load_conf: LoadConf) -> Callable[..., ProjectConfig]:
    """``good_conf(yaml)`` -> the config, asserting that it has no problem."""

    def load(text: str, environ: Mapping[str, str] | None = None) -> ProjectConfig:
        config, problems = load_conf(text, environ)
        assert [str(p) for p in problems] == []
        assert config is not None
        return config

    return load


@pytest.fixture
def clean_imports() -> Iterator[None]:
    """Restore ``sys.path`` and forget the modules a test imported."""
    path = list(sys.path)
    modules = set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture
def module_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``module_name("plug")`` -> a module name no other test uses."""
    base = "".join(c if c.isalnum() else "_" for c in request.node.name)[:40]

    def make(stem: str = "mod") -> str:
        return f"nd_{stem}_{base}_{next(_counter)}"

    return make


@pytest.fixture
def write_module() -> Callable[[Path, str, str], Path]:
    """``write_module(folder, "pkg.mod", code)`` writes an importable module under ``folder``."""
    return _write_module


def _write_module(folder: Path, dotted: str, code: str) -> Path:
    parts = dotted.split(".")
    here = folder
    for package in parts[:-1]:
        here = here / package
        here.mkdir(parents=True, exist_ok=True)
        init = here / "__init__.py"
        if not init.exists():
            init.write_text("", encoding="utf-8")
    file = here / f"{parts[-1]}.py"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(textwrap.dedent(code).lstrip("\n"), encoding="utf-8")
    importlib.invalidate_caches()
    return file


@pytest.fixture
def fake_dist(tmp_path: Path, clean_imports: None) -> Callable[..., Path]:
    """``fake_dist(name, {group: {entry: value}})`` makes an installed distribution visible
    to ``importlib.metadata`` (a ``.dist-info`` folder on ``sys.path``); returns that folder.
    """
    site = tmp_path / "site-packages"
    site.mkdir(exist_ok=True)
    if str(site) not in sys.path:
        sys.path.insert(0, str(site))

    def make(name: str, entry_points: Mapping[str, Mapping[str, str]]) -> Path:
        info = site / f"{name.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8"
        )
        lines = []
        for group, entries in entry_points.items():
            lines.append(f"[{group}]")
            lines.extend(f"{key} = {value}" for key, value in entries.items())
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        importlib.invalidate_caches()
        return site

    return make


@pytest.fixture
def run_project(
    tmp_path: Path, module_name: Callable[[str], str]
) -> Iterator[Callable[..., tuple[Path, Any]]]:
    """``run_project(flows_yaml, procs_code, executor="local", observers=[])`` writes a
    project whose processes live in a project-local plugin module (a name no other test
    uses), runs it in this process with the real orchestrator, and returns its root and the
    run's ``Summary``."""
    from normandy_core.execution import RunOptions, run_plan
    from normandy_core.plan import Selection, build_plan
    from normandy_core.project import check_project, open_project

    counter = itertools.count()
    path = list(sys.path)

    def run(flows: str, procs: str, executor: str = "local", **options: Any) -> tuple[Path, Any]:
        root = tmp_path / f"project{next(counter)}"
        plugin = module_name("procs")
        (root / "pipeline").mkdir(parents=True)
        (root / "pipeline" / "pipeline_conf.yml").write_text(
            f"confs:\n  plugins: [{plugin}]\n  workers: 2\n  envs:\n    dev: {{}}\nflows:\n"
            + textwrap.indent(textwrap.dedent(flows).strip("\n"), "  ")
            + "\n",
            encoding="utf-8",
        )
        _write_module(root, plugin, procs)
        project = open_project(root)
        checked = check_project(project, executor=executor)
        plan = build_plan(project.config, Selection())
        options.setdefault("console", io.StringIO())
        summary = run_plan(project, plan, checked, RunOptions(executor=executor, **options))
        return root, summary

    # not clean_imports: forgetting the modules a run imported (the engine's)
    # would leave the next run with two copies of them
    yield run
    sys.path[:] = path
