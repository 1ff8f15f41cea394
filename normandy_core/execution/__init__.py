"""Running a plan (SPEC 7): flows one after another, steps in order, the tasks of a step in
parallel on an executor.

- :mod:`._orchestrator` — :func:`run_plan` and :class:`Orchestrator`: a run's set-up,
  lifetime and end (its record, its logs, its executor, Ctrl-C);
- :mod:`._scheduler` — the state machine: steps, attempts, retries, tolerated failures;
- :mod:`._variables` — staging, committing and discarding each task's variables;
- :mod:`._reuse` — fingerprints and the decision to reuse (:mod:`._world`: how what a
  trace names is now; :mod:`._preview`: ``--dry-run --explain``);
- :mod:`._recorder` and :mod:`._hooks` — the history and the plugins' lifecycle hooks, as
  observers of the run's events (like the log files and the displays);
- :mod:`._events`, :mod:`._signals` — telling observers, catching signals.
"""

from __future__ import annotations

from normandy_core.execution._orchestrator import (
    Orchestrator,
    RunOptions,
    explain_plan,
    new_run_id,
    run_plan,
)
from normandy_core.execution._reuse import Decision
from normandy_core.execution._scheduler import Scheduler, describe_error
from normandy_core.outcomes import Attempt, Outcome, RunInfo, Summary, TaskError
from normandy_core.resume import Resume
from normandy_core.status import (
    CRASHED,
    FAILED,
    INTERRUPTED,
    NOT_STARTED,
    SUCCEEDED,
    TIMED_OUT,
)

__all__ = [
    "CRASHED",
    "FAILED",
    "INTERRUPTED",
    "NOT_STARTED",
    "SUCCEEDED",
    "TIMED_OUT",
    "Attempt",
    "Decision",
    "Orchestrator",
    "Outcome",
    "Resume",
    "RunInfo",
    "RunOptions",
    "Scheduler",
    "Summary",
    "TaskError",
    "describe_error",
    "explain_plan",
    "new_run_id",
    "run_plan",
]
