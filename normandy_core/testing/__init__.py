"""Testing processes and projects (SPEC 15): what the pytest plugin's fixtures are made of.

The pytest plugin (:mod:`normandy_core.testing.plugin`, entry point ``pytest11`` named
``normandy``) gives two fixtures, ``run_process`` and ``normandy_project``; this module
gives the same outside pytest, and the types they return:

- :class:`ProcessRunner` — ``run_process(name, *, params, inputs, env, confs,
  credentials, project, entry)``: one registered process, run in this process as a
  task of a run runs, on a temporary store; returns a :class:`ProcessResult`
  (``value``, ``outputs``, ``records``, ``stdout``, ``stderr``, ``error``);
- :func:`copy_project` / :class:`NormandyProject` — a project run with the real
  ``normandy`` command: ``.run(*args)`` gives a :class:`RunResult` (exit code and the
  ``run --json`` summary), ``.load(name, flow=None)`` a variable of its last run.

The names are imported on first use, so that loading the plugin costs a pytest session
that does not use it nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "CommandResult": "normandy_core.testing._project",
    "LogLine": "normandy_core.testing._results",
    "MissingOutput": "normandy_core.testing._results",
    "NormandyProject": "normandy_core.testing._project",
    "Outputs": "normandy_core.testing._results",
    "ProcessFailed": "normandy_core.testing._results",
    "ProcessResult": "normandy_core.testing._results",
    "ProcessRunner": "normandy_core.testing._process",
    "RunFailed": "normandy_core.testing._project",
    "RunResult": "normandy_core.testing._project",
    "copy_project": "normandy_core.testing._project",
}

if TYPE_CHECKING:
    from normandy_core.testing._process import ProcessRunner
    from normandy_core.testing._project import (
        CommandResult,
        NormandyProject,
        RunFailed,
        RunResult,
        copy_project,
    )
    from normandy_core.testing._results import (
        LogLine,
        MissingOutput,
        Outputs,
        ProcessFailed,
        ProcessResult,
    )

__all__ = [
    "CommandResult",
    "LogLine",
    "MissingOutput",
    "NormandyProject",
    "Outputs",
    "ProcessFailed",
    "ProcessResult",
    "ProcessRunner",
    "RunFailed",
    "RunResult",
    "copy_project",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'normandy_core.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
