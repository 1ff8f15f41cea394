"""What ``normandy run`` runs, prepared from what the command line asked for: the flows
selected (or those of the run it resumes), the project checked, the plan built, the
resumed run's successes and variables found. The command only parses, calls and renders."""

from __future__ import annotations

from dataclasses import dataclass

from normandy_core.history import History
from normandy_core.plan import Plan, Selection, build_plan, select_flows
from normandy_core.project import Checked, Project, check_project
from normandy_core.resume import Resume, prepare_resume, selection_of
from normandy_core.status import SUCCEEDED
from normandy_core.store import store_root


@dataclass(frozen=True)
class PreparedRun:
    """A run ready to start: its plan, the checked env, and what it resumes (if it does).
    ``nothing_to_do`` says why there is nothing to run (the resumed run succeeded)."""

    plan: Plan
    checked: Checked
    resume: Resume | None = None
    nothing_to_do: str | None = None


def prepare_run(
    project: Project,
    selection: Selection,
    env: str | None = None,
    *,
    executor: str | None = None,
    resume: str | None = None,
) -> PreparedRun:
    """Check ``project`` for ``selection`` (every problem at once, as one
    :class:`~normandy_core.errors.ConfigError`) and plan it. With ``resume`` (a run id or
    ``last``), the selection and env are that run's, and its successes are reused."""
    if resume is None:
        return _prepared(project, selection, env, executor)
    history = History(project.root / ".normandy")
    try:
        record = history.get(resume)
        selection, env = selection_of(record), record.env
        prepared = _prepared(project, selection, env, executor)
        if record.status == SUCCEEDED:
            return PreparedRun(
                prepared.plan,
                prepared.checked,
                None,
                f"run {record.id} succeeded: nothing to resume",
            )
        store = store_root(project.root, project.config.store)
        resumed = prepare_resume(history, record, prepared.plan, store)
    finally:
        history.close()
    return PreparedRun(prepared.plan, prepared.checked, resumed)


def _prepared(
    project: Project, selection: Selection, env: str | None, executor: str | None
) -> PreparedRun:
    flows = None if project.problems else [f.name for f in select_flows(project.config, selection)]
    checked = check_project(project, flows, env, executor=executor)
    return PreparedRun(build_plan(project.config, selection), checked)
