"""``normandy run --resume RUN_ID|last`` (SPEC 8, 13): the same selection and env as a
recorded run (its params, with the ``--param`` given now over them), every task that
succeeded there reused where its fingerprint is unchanged, the rest run. The configuration
may have changed since: a fixed param or a longer timeout reruns what it touches only."""

from __future__ import annotations

from dataclasses import dataclass

from normandy_core.errors import ResumeError
from normandy_core.history import History, RunRecord
from normandy_core.plan import Plan, Selection
from normandy_core.store import FlowStore, Place

__all__ = ["Resume", "ResumeError", "prepare_resume", "selection_of"]


@dataclass(frozen=True)
class Resume:
    """What a resumed run takes from the run it resumes."""

    run_id: str
    succeeded: frozenset[str]
    """Keys of the tasks that succeeded there: not run again."""
    run_dir: Place
    """The resumed run's folder in the store."""


def selection_of(record: RunRecord) -> Selection:
    """The selection a recorded run was started with (a partial run's patterns too)."""
    part = tuple((str(flag), str(pattern)) for flag, pattern in record.part)
    return Selection(tuple(record.tags), tuple(record.flows), dict(record.params), part)


def prepare_resume(history: History, record: RunRecord, plan: Plan, store: Place) -> Resume:
    """What the new run needs of ``record``, whose variables are in ``store`` (the
    project's ``confs.store``); :class:`ResumeError` if it cannot be resumed.

    Where the run's ``normandy`` was killed in the middle of a step, its tasks that had
    succeeded left their writes staged: they are committed now, so that they can be
    reused."""
    if record.status == "running":
        raise ResumeError(
            f"run {record.id} is still running (pid {record.pid} on "
            f"{record.host}); wait for it or stop it first"
        )
    done = [t for t in history.tasks(record.id) if t.status == "succeeded"]
    run_dir = store / "runs" / record.id
    if any(t.variables for t in done) and not run_dir.is_dir():
        raise ResumeError(
            f"cannot resume run {record.id}: its variables are not in the store {store} "
            "(was confs.store changed since, or the run pruned?); point confs.store back at "
            "the store of that run, or run without --resume to start afresh"
        )
    for task in done:
        staged = FlowStore(run_dir, task.flow)
        if staged.staging(task.key).exists():
            staged.commit(task.key)
    return Resume(record.id, frozenset(t.key for t in done), run_dir)
