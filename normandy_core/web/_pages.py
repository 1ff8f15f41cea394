"""What the pages of ``normandy ui`` show, read from the history's typed records (the same
records the report and ``runs --json`` use): the runs, filtered; a run; two runs compared;
the project's flows. Plain data, no HTTP: :mod:`._app` serves it as HTML and JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from normandy_core.fingerprint import Fingerprint, verify
from normandy_core.history import History, RunIndex, RunRecord, TaskRecord
from normandy_core.status import RUN_STATUSES, category, label
from normandy_core.trace import LEGACY, PARAM, Check, World, order

MAX_RUNS = 10_000
"""The most runs the runs page looks through (newest first)."""
PAGE = 50
"""Runs shown on one page."""


@dataclass(frozen=True)
class RunRow:
    run: RunRecord
    counts: Mapping[str, int]
    size: int | None
    """Bytes on disk (variables and logs); ``None``: pruned, or not measured."""

    @property
    def flows(self) -> list[str]:
        return [f["name"] for f in self.run.plan]


@dataclass(frozen=True)
class RunsPage:
    rows: tuple[RunRow, ...]
    total: int
    """Runs that match the filters."""
    offset: int
    filters: Mapping[str, str]
    statuses: tuple[str, ...]
    flows: tuple[str, ...]
    tags: tuple[str, ...]
    """What the filters may choose from, among the runs recorded."""

    @property
    def next_offset(self) -> int | None:
        return self.offset + PAGE if self.offset + PAGE < self.total else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "offset": self.offset,
            "filters": dict(self.filters),
            "runs": [
                {**r.run.to_dict(), "flows_run": r.flows, "counts": dict(r.counts), "size": r.size}
                for r in self.rows
            ],
        }


def runs_page(
    history: History,
    sizes: Any,
    *,
    status: str = "",
    flow: str = "",
    tag: str = "",
    offset: int = 0,
) -> RunsPage:
    """The runs, newest first, those matching ``status``, ``flow`` (a flow of its plan)
    and ``tag`` (asked for, or a tag of a flow it ran); ``sizes(run_ids) -> {id: bytes}``
    measures the runs shown."""
    index = history.index(MAX_RUNS)
    flows = sorted({f for r in index for f in r.flows})
    tags = sorted({t for r in index for t in (*r.tags, *r.flow_tags)})

    def keep(r: RunIndex) -> bool:
        return (
            (not status or r.status == status)
            and (not flow or flow in r.flows)
            and (not tag or tag in r.tags or tag in r.flow_tags)
        )

    matching = [r for r in index if keep(r)]
    shown = [history.get(r.id) for r in matching[offset : offset + PAGE]]
    counts = history.tallies([r.id for r in shown])
    measured = sizes([r.id for r in shown if r.pruned is None])
    filters = {k: v for k, v in (("status", status), ("flow", flow), ("tag", tag)) if v}
    return RunsPage(
        rows=tuple(RunRow(r, counts.get(r.id, {}), measured.get(r.id)) for r in shown),
        total=len(matching),
        offset=offset,
        filters=filters,
        statuses=RUN_STATUSES,
        flows=tuple(flows),
        tags=tuple(tags),
    )


# -- two runs compared ---------------------------------------------------------------------


@dataclass(frozen=True)
class TaskDiff:
    """One task in two runs: how it ended in each, and what its result depended on that
    changed (``--explain``'s words: ``code changed (MODULE)``, ``params changed (KEY: OLD →
    NEW)``, ``input changed (NAME)``, ``env changed``)."""

    key: str
    a: TaskRecord | None
    b: TaskRecord | None
    changes: tuple[str, ...]
    compared: bool
    """Whether both runs recorded its fingerprint (else only the statuses are compared)."""

    @property
    def status_a(self) -> str:
        return _status(self.a)

    @property
    def status_b(self) -> str:
        return _status(self.b)

    @property
    def same(self) -> bool:
        return not self.changes and self.compared

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "a": self.status_a,
            "b": self.status_b,
            "changes": list(self.changes),
            "compared": self.compared,
        }


@dataclass(frozen=True)
class RunsDiff:
    a: RunRecord
    b: RunRecord
    tasks: tuple[TaskDiff, ...]
    run_changes: tuple[str, ...]
    """What differs between the runs themselves: env, selection, params, version, plan."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.id,
            "b": self.b.id,
            "run_changes": list(self.run_changes),
            "tasks": [t.to_dict() for t in self.tasks],
        }


def diff_runs(history: History, a_id: str, b_id: str) -> RunsDiff:
    """What changed from run ``a_id`` to run ``b_id``, task by task, from the fingerprints
    the history holds."""
    a, b = history.get(a_id), history.get(b_id)
    tasks_a = {t.key: t for t in history.tasks(a.id)}
    tasks_b = {t.key: t for t in history.tasks(b.id)}
    prints_a, prints_b = history.fingerprints(a.id), history.fingerprints(b.id)
    out = []
    for key in dict.fromkeys([*tasks_a, *tasks_b]):
        ta, tb = tasks_a.get(key), tasks_b.get(key)
        fa, fb = prints_a.get(key), prints_b.get(key)
        if ta is None or tb is None:
            changes = ("only in run " + (a.id if tb is None else b.id),)
            out.append(TaskDiff(key, ta, tb, changes, False))
            continue
        if fa is None or fb is None:
            out.append(TaskDiff(key, ta, tb, (), False))
            continue
        out.append(TaskDiff(key, ta, tb, tuple(compare(fa, fb, ta.params, tb.params)), True))
    return RunsDiff(a, b, tuple(out), tuple(_run_changes(a, b)))


def compare(
    a: Fingerprint, b: Fingerprint, params_a: Mapping[str, Any], params_b: Mapping[str, Any]
) -> list[str]:
    """What a task's result depended on that differs from fingerprint ``a`` to ``b``, in
    ``--explain``'s words: :func:`~normandy_core.fingerprint.verify` of ``a`` against a
    world where everything is as ``b``'s trace saw it. Params are shown as the history
    stored them (credentials masked); the fingerprints hold only their keyed hashes."""
    if LEGACY in a.trace.reads or LEGACY in b.trace.reads:
        return ["recorded by an older Normandy, before it traced what tasks read"]

    def seen_in_b(kind: str) -> Check:
        reads, writes = b.trace.reads.get(kind, {}), b.trace.writes.get(kind, {})
        return lambda name, seen: reads.get(name, writes.get(name)) == seen

    def shown(kind: str, name: str) -> str:
        if kind == PARAM:
            return f"{name}: {_shown(params_a, name)} → {_shown(params_b, name)}"
        return name

    kinds = {*a.trace.reads, *a.trace.writes}
    changes = verify(a, b, World({kind: seen_in_b(kind) for kind in kinds}, shown))
    for kind in sorted(b.trace.reads, key=order):  # what only the later run read
        new = sorted(set(b.trace.reads[kind]) - set(a.trace.reads.get(kind, {})))
        if new:
            changes.extend(f"now reads {kind}: {shown(kind, name)}" for name in new)
    return list(dict.fromkeys(changes))


def _run_changes(a: RunRecord, b: RunRecord) -> list[str]:
    out = []
    if a.env != b.env:
        out.append(f"env: {a.env} → {b.env}")
    if a.selection != b.selection:
        out.append(f"selection: {a.selection} → {b.selection}")
    if a.version != b.version:
        out.append(f"normandy: {a.version} → {b.version}")
    if a.fingerprint != b.fingerprint:
        out.append("the plan changed (flows, steps, tasks or their options)")
    return out


def _shown(params: Mapping[str, Any], key: str) -> str:
    if key not in params:
        return "(none)"
    return json.dumps(params[key], sort_keys=True, default=str)


def _status(task: TaskRecord | None) -> str:
    if task is None:
        return "-"
    return label(task.status, task.tolerated, task.resumed, task.cached_from)


def category_of(task: TaskRecord | None) -> str:
    return category(task.status, task.tolerated, task.resumed) if task else ""


# -- the project's flows ---------------------------------------------------------------------


@dataclass(frozen=True)
class FlowsPage:
    flows: list[dict[str, Any]]
    """As in ``Plan.to_dict()["flows"]``, each task with the variables it reads and writes
    (``reads``, ``writes``) as declared."""
    problems: tuple[str, ...]


def flows_page(root: Path) -> FlowsPage:
    """Every flow of the project as configured now, with its declared data (as ``normandy
    graph`` draws it); the configuration's problems, where it has any."""
    from normandy_core.dataflow import data_of
    from normandy_core.errors import NormandyError
    from normandy_core.plan import Selection, build_plan
    from normandy_core.project import open_project, signature_or_none

    try:
        project = open_project(root)
        if project.problems:
            return FlowsPage([], tuple(str(p) for p in project.problems))
        plan = build_plan(project.config, Selection(flows=tuple(project.config.flows)))
    except NormandyError as exc:
        return FlowsPage([], tuple(str(exc).splitlines()))
    data = data_of(plan, lambda name: signature_or_none(project.registry, name))
    flows: list[dict[str, Any]] = plan.to_dict()["flows"]
    for flow in flows:
        for step in flow["steps"]:
            for task in step["tasks"]:
                reads, writes = data.get(task["key"], ((), ()))
                task["reads"], task["writes"] = list(reads), list(writes)
    return FlowsPage(flows, ())
