"""``normandy run --resume RUN_ID|last``: the same selection, env and params as a recorded
run, skipping the tasks that succeeded there and reusing their variables."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from normandy_core.errors import ResumeError
from normandy_core.history import History, RunRecord
from normandy_core.plan import Plan, Selection
from normandy_core.store import Place

__all__ = ["Resume", "ResumeError", "plan_changes", "prepare_resume", "selection_of"]


@dataclass(frozen=True)
class Resume:
    """What a resumed run takes from the run it resumes."""

    run_id: str
    succeeded: frozenset[str]
    """Keys of the tasks that succeeded there: not run again."""
    run_dir: Place
    """The resumed run's folder in the store."""


_COMPARED = ("process", "params", "error_tolerance", "retries", "retry_delay", "timeout")


def selection_of(record: RunRecord) -> Selection:
    """The selection a recorded run was started with."""
    return Selection(tuple(record.tags), tuple(record.flows), dict(record.params))


def prepare_resume(history: History, record: RunRecord, plan: Plan, store: Place) -> Resume:
    """What the new run takes over from ``record``, whose variables are in ``store`` (the
    project's ``confs.store``); :class:`ResumeError` if it cannot."""
    if record.status == "running":
        raise ResumeError(
            f"run {record.id} is still running (pid {record.pid} on "
            f"{record.host}); wait for it or stop it first"
        )
    if record.fingerprint != plan.fingerprint():
        changes = plan_changes(record.plan, plan.to_dict()["flows"])
        listed = "\n".join(f"  - {c}" for c in changes) or "  - the order of flows or steps"
        raise ResumeError(
            f"cannot resume run {record.id}: the configuration no longer gives the same plan:\n"
            f"{listed}\nUndo those changes to resume, or run without --resume to start afresh."
        )
    done = [t for t in history.tasks(record.id) if t.status == "succeeded"]
    run_dir = store / "runs" / record.id
    if any(t.variables for t in done) and not run_dir.is_dir():
        raise ResumeError(
            f"cannot resume run {record.id}: its variables are not in the store {store} "
            "(was confs.store changed since?); point confs.store back at the store of that "
            "run, or run without --resume to start afresh"
        )
    return Resume(record.id, frozenset(t.key for t in done), run_dir)


def plan_changes(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    """What differs between two plans' tasks, in words."""
    old_flows, new_flows = {f["name"]: f for f in old}, {f["name"]: f for f in new}
    changes = [f"flow {name} was removed" for name in old_flows if name not in new_flows]
    changes += [f"flow {name} was added" for name in new_flows if name not in old_flows]
    for name in old_flows.keys() & new_flows.keys():
        if old_flows[name]["tags"] != new_flows[name]["tags"]:
            changes.append(
                f"flow {name}: tags changed from {_show(old_flows[name]['tags'])} "
                f"to {_show(new_flows[name]['tags'])}"
            )
        old_steps = [s["name"] for s in old_flows[name]["steps"]]
        new_steps = [s["name"] for s in new_flows[name]["steps"]]
        if old_steps != new_steps:
            changes.append(
                f"flow {name}: steps changed from {_show(old_steps)} to {_show(new_steps)}"
            )
    before, after = _tasks(old), _tasks(new)
    changes += [f"task {key} was removed" for key in before if key not in after]
    changes += [f"task {key} was added" for key in after if key not in before]
    for key in before.keys() & after.keys():
        for field in _COMPARED:
            was, now = before[key].get(field), after[key].get(field)
            if was != now:
                changes.append(f"{key}: {field} changed from {_show(was)} to {_show(now)}")
    return sorted(changes)


def _tasks(flows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {t["key"]: t for f in flows for s in f["steps"] for t in s["tasks"]}


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)
