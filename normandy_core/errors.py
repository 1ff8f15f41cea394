"""Normandy's exceptions.

Every error Normandy raises for a user's mistake derives from :class:`NormandyError`;
the command line turns them into a message and an exit status, never a traceback::

    NormandyError
    ├── ProjectNotFoundError      no pipeline/pipeline_conf.yml found
    ├── ConfigError               problems in a configuration file, each with its position
    ├── SelectionError            the tags/flows/env given select nothing usable
    ├── PluginError               a plugin cannot be loaded or misbehaves
    │   └── HookError             a hook implementation raised
    ├── ExecutorError             an execution engine cannot start (cluster unreachable…)
    ├── RegistryError             a process name cannot be served
    │   ├── DuplicateProcessError a name used where it has several targets
    │   └── ProcessLoadError      a registered target cannot be imported or called
    ├── HistoryError              the run history cannot be read or written
    │   └── RunNotFoundError      no recorded run has that id
    ├── ResumeError               a run cannot be resumed (being resumed, variables gone…)
    ├── ReportError               a run's report cannot be written
    ├── VariableNotFoundError     a past run's variable asked for is not there
    ├── UiError                   normandy ui cannot start (its extra, its port)
    └── ProjectExistsError        create-project would overwrite files

A process's own exception is not a ``NormandyError``: it is reported with its traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ConfigError",
    "DuplicateProcessError",
    "ExecutorError",
    "HistoryError",
    "HookError",
    "NormandyError",
    "PluginError",
    "Problem",
    "ProcessLoadError",
    "ProjectExistsError",
    "ProjectNotFoundError",
    "RegistryError",
    "ReportError",
    "ResumeError",
    "RunNotFoundError",
    "SelectionError",
    "UiError",
    "VariableNotFoundError",
]


class NormandyError(Exception):
    """Base of every error Normandy reports to a user."""


class ProjectNotFoundError(NormandyError):
    """No ``pipeline/pipeline_conf.yml`` in the given folder or any parent."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a configuration file.

    ``line`` and ``column`` are 1-based; ``path`` is the dotted key path inside the file
    (``flows.main.steps.read``), empty for the document itself.
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        # a key holding terminal escape codes is shown escaped, as its message quotes it
        where = f"{visible(self.file)}:{self.line}:{self.column}"
        if not self.path:
            return f"{where}: {self.message}"
        return f"{where}: {visible(self.path)}: {self.message}"


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with its control characters escaped as a ``repr`` escapes them
    (``\\x1b``): a file's key that holds terminal escape codes cannot act on the terminal
    it is shown on."""
    if not _CONTROLS.search(text):
        return text
    return _CONTROLS.sub(lambda m: repr(m.group())[1:-1], text)


class ConfigError(NormandyError):
    """One or more problems in configuration files, all reported at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class SelectionError(NormandyError):
    """The command line selects no flow, or names an unknown flow or env."""


class PluginError(NormandyError):
    """A plugin could not be loaded; ``plugin`` names it."""

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        super().__init__(message)


class HookError(PluginError):
    """A hook implementation raised; ``plugin`` and ``hook`` name it, ``cause`` is the error."""

    def __init__(self, plugin: str, hook: str, cause: BaseException) -> None:
        self.hook = hook
        self.cause = cause
        super().__init__(
            plugin, f"plugin {plugin!r} failed in hook {hook}: {type(cause).__name__}: {cause}"
        )


class ExecutorError(NormandyError):
    """An execution engine cannot run the tasks: its cluster cannot be reached, or it
    cannot reach the store. Raised before any task starts."""


class RegistryError(NormandyError):
    """A process name cannot be served."""


class DuplicateProcessError(RegistryError):
    """One process name registered to different targets (a *clash*), where it is used.

    ``name`` is the process name; the message lists every target with its source and the
    ways out (the registry writes it: see :func:`normandy_core.registry.clash_message`).
    """

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(message)


class ProcessLoadError(RegistryError):
    """A registered process could not be imported, or its signature cannot be served."""


class HistoryError(NormandyError):
    """The run history database cannot be read or written (locked by another program for
    too long, damaged, or written by a newer Normandy)."""


class RunNotFoundError(HistoryError):
    """``normandy runs RUN_ID``, ``report`` or ``--resume RUN_ID`` names no recorded run."""


class ResumeError(NormandyError):
    """A run cannot be resumed: it is being resumed by another run, or its variables are
    gone."""


class ReportError(NormandyError):
    """A run's report cannot be written where asked."""


class VariableNotFoundError(NormandyError):
    """``normandy_core.load`` or ``normandy vars`` asked for a variable that no recorded
    run holds (or no longer holds)."""


class UiError(NormandyError):
    """``normandy ui`` cannot start: its extra is not installed, or its port is taken."""


class ProjectExistsError(NormandyError):
    """``create-project`` would overwrite files (without ``--force``)."""


def display_path(path: Path | str) -> str:
    """A path as users should read it: relative to the current folder when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
