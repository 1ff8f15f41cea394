"""Where :func:`run_process` finds processes: the project under test, the package under
test, the installed packages — and which entry of the project a process stands for.

The *project under test* is the nearest folder, from the test file's folder upward,
holding ``pipeline/pipeline_conf.yml``: opened as every command opens it
(:func:`normandy_core.project.open_project`: its ``confs.plugins``, ``confs.processes``
and its own package file's entry points, with the installed packages'). Failing that,
the *package under test* is the nearest folder upward holding a ``setup.cfg`` or
``pyproject.toml``: its ``normandy.processes`` entry points are registered from that
file, as a project's own are (SPEC 14), so a process package's tests run installed or
not.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from normandy_core.config import CONF_FILE, env_settings, load_credentials, select_env
from normandy_core.errors import ConfigError, RegistryError, display_path

if TYPE_CHECKING:
    from normandy_core.config import FlowConfig, ProcessEntry
    from normandy_core.project import Project
    from normandy_core.registry import ProcessSpec, Registry


@dataclass(frozen=True)
class Use:
    """An entry of the project that runs a process."""

    flow: FlowConfig
    step: str
    entry: ProcessEntry

    @property
    def key(self) -> str:
        return f"{self.flow.name}.{self.step}.{self.entry.name}"


@dataclass
class Where:
    """What a call of a process runs against: a project (or a bare root folder, or
    none), and the registry of the processes it can name."""

    registry: Registry
    project: Project | None = None
    root: Path | None = None
    """``pipe.path``: the project's root, or a folder given as ``project=``."""
    sources: str = "the installed packages"
    """Where the names came from, for messages."""
    folders: tuple[Path, ...] = ()
    """The folders of the project's (or package's) own modules: ``src/``, its root."""

    def spec(self, name: str) -> ProcessSpec:
        """The registration of ``name``: :class:`RegistryError` for an unknown name (with
        a *did you mean*), :class:`DuplicateProcessError` for a clash."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        if name not in self.registry:
            close = self.registry.suggest(name)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise RegistryError(
                f"unknown process {name!r}{hint} (looked in {self.sources}; `normandy list` "
                "shows what is registered)"
            )
        return self.registry.get(name)

    def uses(self, name: str) -> list[Use]:
        """The project's entries that run ``name``, in file order."""
        if self.project is None:
            return []
        return [
            Use(flow, step.name, entry)
            for flow in self.project.config.flows.values()
            for step in flow.steps
            for entry in step.entries
            if entry.process == name
        ]

    def use(self, name: str, entry: str | None) -> Use | None:
        """The entry whose options apply: the one named ``entry`` (``flow.step.task``),
        else the only entry that runs ``name``; ``None`` where it has none or several."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        uses = self.uses(name)
        if entry is None:
            return uses[0] if len(uses) == 1 else None
        found = next((u for u in uses if u.key == entry), None)
        if found is None:
            known = ", ".join(u.key for u in uses) or "none"
            where = f"project {display_path(self.root)}" if self.root else "no project"
            raise RegistryError(
                f"no entry {entry!r} runs process {name!r} in {where}; its entries: {known}"
            )
        return found

    def env(
        self,
        env: str | None,
        confs: Mapping[str, Any] | None,
        credentials: Mapping[str, Any] | None,
    ) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """The env's name, settings and credentials: the project's env (its default
        env unless named) with ``confs`` over its settings; ``credentials`` where given,
        else its credentials file, read as a run reads it."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        if self.project is None:
            return env or "test", dict(confs or {}), dict(credentials or {})
        config = self.project.config
        name, problems = select_env(config, env, origin="env=")
        settings: dict[str, Any] = {}
        loaded: dict[str, Any] = dict(credentials or {})
        if name is not None:
            settings, more = env_settings(config, name, os.environ)
            problems += more
            if credentials is None:
                loaded, more = load_credentials(config, name, os.environ)
                problems += more
        if problems:
            raise ConfigError(problems)
        assert name is not None  # the schema requires an env
        return name, {**settings, **(confs or {})}, loaded


def find_upward(start: Path, *names: str) -> Path | None:
    """The nearest folder, from ``start`` upward, holding one of ``names``."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if any((folder / name).exists() for name in names):
            return folder
    return None


def where_for(project: Path | None, tests: Path | None) -> Where:
    """The processes a call can name: those of ``project`` (a project folder; a folder
    without ``pipeline/pipeline_conf.yml`` is only the root the process sees), else of
    the project under test upward of ``tests``, else of the package under test; and the
    installed packages' always."""
    if project is None and tests is not None:
        found = find_upward(tests, str(CONF_FILE))
        if found is not None:
            project = found
    if project is not None and (project / CONF_FILE).is_file():
        return _project(project)
    return _packages(project, tests)


def _project(root: Path) -> Where:
    from normandy_core.project import open_project

    opened = open_project(root)
    opened.raise_problems()
    return Where(
        opened.registry,
        opened,
        opened.root,
        f"the installed packages and project {display_path(opened.root)}",
        (opened.root / "src", opened.root),
    )


def _packages(root: Path | None, tests: Path | None) -> Where:
    from normandy_core.package_file import read_declared_processes
    from normandy_core.plugins import add_project_paths, make_plugin_manager
    from normandy_core.registry import build_registry

    declared = None
    sources = "the installed packages"
    folders: tuple[Path, ...] = ()
    package = find_upward(tests, "setup.cfg", "pyproject.toml") if tests is not None else None
    if package is not None:
        declared, problems = read_declared_processes(package)
        if problems:
            raise ConfigError(problems)
        if declared is not None:
            add_project_paths(package)  # its modules, installed or not
            sources += f" and the package under test ({display_path(declared.file)})"
            folders = (package / "src", package)
    registry = build_registry(make_plugin_manager(), declared)
    return Where(registry, None, root, sources, folders)
