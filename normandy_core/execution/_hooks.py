"""The lifecycle hooks of plugins (SPEC 3) as an observer of the run's events: each hook is
called through pluggy's hook caller, in the orchestrating process, with frozen records
(the run's :class:`RunInfo`, a task's :class:`TaskOutcome`, the :class:`Summary`): what a
hook receives, it cannot change for the run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from normandy_core.errors import HookError
from normandy_core.events import RunObserver
from normandy_core.outcomes import Attempt, Outcome, RunInfo, Summary
from normandy_core.plan import Task
from normandy_core.plugins import PluginManager
from normandy_core.status import INTERRUPTED


class HookCaller(RunObserver):
    """Calls ``normandy_before_run``, ``normandy_before_process`` (each attempt),
    ``normandy_on_process_error`` (each failed attempt), ``normandy_after_process`` (once
    per task that ran) and ``normandy_after_run``. A hook that raises is reported through
    ``report`` with its plugin's name; the run goes on."""

    def __init__(self, plugins: PluginManager, report: Callable[[int, str], None]) -> None:
        self.plugins = plugins
        self.run: RunInfo | None = None
        self.report = report
        self._implemented: dict[str, bool] = {}

    def implemented(self, hook: str) -> bool:
        """Whether a plugin implements ``hook`` (asked once: a run calls the task hooks
        several times per task, and most projects implement none of them)."""
        found = self._implemented.get(hook)
        if found is None:
            caller = getattr(self.plugins.hook, hook)
            found = self._implemented[hook] = bool(caller.get_hookimpls())
        return found

    def _call(self, hook: str, **kwargs: Any) -> None:
        if not self.implemented(hook):
            return
        try:
            self.plugins.call_hook(hook, run=self.run, **kwargs)
        except HookError as exc:
            self.report(logging.ERROR, str(exc))

    def run_started(self, run: RunInfo) -> None:
        self.run = run
        self._call("normandy_before_run")

    def task_submitted(self, task: Task, attempt: int) -> None:
        self._call("normandy_before_process", task=task)

    def attempt_ended(self, attempt: Attempt) -> None:
        if attempt.error is not None and attempt.status != INTERRUPTED:
            self._call("normandy_on_process_error", task=attempt.task, error=attempt.error)

    def task_ended(self, outcome: Outcome) -> None:
        hook = "normandy_after_process"
        if outcome.status != INTERRUPTED and not outcome.resumed and self.implemented(hook):
            self._call(hook, task=outcome.task, outcome=outcome.record())

    def run_ended(self, summary: Summary) -> None:
        self._call("normandy_after_run", summary=summary)
