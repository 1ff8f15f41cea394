"""The hook specifications plugin authors implement.

A plugin is a module or an object with functions marked ``@normandy_core.hookimpl`` whose
names are the hooks below. Implementations may accept any subset of a hook's arguments,
by name. Hooks are never renamed and their arguments never removed: new needs get new hooks.

Every hook is called in the orchestrating process (the one running ``normandy``), never in
a worker, through pluggy's hook caller: ``@hookimpl(wrapper=True)``, ``tryfirst`` and
``trylast`` work as pluggy documents them. An implementation that raises is reported with
its plugin's name; a lifecycle hook that raises does not stop the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from normandy_core.outcomes import RunInfo, Summary, TaskError, TaskOutcome
    from normandy_core.plan import Task

PROJECT_NAME = "normandy"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marker for hook specifications (``@hookspec``)."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for hook implementations (``@hookimpl``), the one plugin authors use."""


# -- registration ---------------------------------------------------------------------------


@hookspec
def normandy_processes() -> Mapping[str, Callable[..., Any] | str]:
    """Return the processes this plugin provides: a mapping ``name -> callable`` or
    ``name -> "module:attribute"``.

    Called once per command, before the configuration is checked against the registry.
    Names must match ``[A-Za-z_][A-Za-z0-9_.-]*``. A string target is imported only by
    the commands that run or validate the process, so prefer strings for heavy modules.
    """
    raise NotImplementedError


@hookspec
def normandy_executors() -> Mapping[str, type]:
    """Return the execution engines this plugin provides: a mapping ``name -> executor
    class``, selectable with ``--executor NAME`` or ``confs.executor``.

    Called when a run starts and by ``validate``. ``local`` and ``serial`` come from
    Normandy's own built-in plugin through this same hook.
    """
    raise NotImplementedError


# -- the run's lifecycle --------------------------------------------------------------------


@hookspec
def normandy_before_run(run: RunInfo) -> None:
    """Called once when a run starts, before its first task is submitted.

    ``run`` (:class:`~normandy_core.outcomes.RunInfo`) describes the run: ``id``, ``plan``,
    ``env``, ``root`` (the project folder), ``executor``, ``workers``, ``started``. The
    return value is ignored.
    """


@hookspec
def normandy_after_run(run: RunInfo, summary: Summary) -> None:
    """Called once when a run ends, whatever its outcome (succeeded, failed, interrupted),
    after its last task ended and its history was written. ``summary``
    (:class:`~normandy_core.outcomes.Summary`) holds the run's ``status``, the ``reason``
    it ended early (if it did), every task's ``outcomes``, ``counts`` and ``exit_code``.
    The return value is ignored.
    """


@hookspec
def normandy_before_process(run: RunInfo, task: Task) -> None:
    """Called just before ``task`` (:class:`~normandy_core.plan.Task`: ``key``, ``flow``,
    ``step``, ``name``, ``process``, ``params``…) is handed to the executor, before each
    attempt. The return value is ignored.
    """


@hookspec
def normandy_after_process(run: RunInfo, task: Task, outcome: TaskOutcome) -> None:
    """Called when ``task`` has ended (succeeded, failed, tolerated, crashed or timed out),
    after its last attempt, with its ``outcome`` (a frozen
    :class:`~normandy_core.outcomes.TaskOutcome`:
    ``status``, ``tolerated``, ``attempts``, ``started``, ``ended``, ``duration`` (its work),
    ``import_duration`` (its worker importing the process's module, apart), ``pid``,
    ``error``, ``variables``). Not called for a task interrupted by Ctrl-C, nor for one not
    run again by ``--resume``. The return value is ignored.
    """


@hookspec
def normandy_on_process_error(run: RunInfo, task: Task, error: TaskError) -> None:
    """Called each time an attempt of ``task`` fails: an exception in the process, a crash
    of its worker or a timeout. ``error`` (:class:`~normandy_core.outcomes.TaskError`)
    has ``kind`` (``failed``, ``crashed``, ``timed out``), ``type``, ``message`` and
    ``traceback``. Called before ``normandy_after_process`` (or before the next attempt).
    The return value is ignored.
    """
