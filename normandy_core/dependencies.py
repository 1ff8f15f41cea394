"""What each task reads and writes, and what follows from it for scheduling (SPEC 19, 20):
which tasks a task waits for under ``confs.schedule: dataflow``, and which flows may run
side by side.

This module is the one place that says what a task reads and writes (:func:`task_data`).
A piece of data is named ``(scope, name)``: a variable's scope is its flow (variables are
never shared by flows, SPEC 5); a dataset (SPEC 16) is named with the scope ``""``,
shared by every flow: a task reading a dataset waits for the task of an earlier step that
writes it, and two flows of which one writes a dataset the other reads or writes do not
run side by side.

Under ``dataflow`` a task waits for (:func:`waits_for`):

- the last task of an earlier step that writes what it reads (read after write);
- where it writes a name: the last earlier writer of that name (write after write), and
  every task that reads the version it replaces — in an earlier step or in its own —
  (write after read): what a task reads is what the steps before it left, as with
  ``steps`` (SPEC 5), however the tasks interleave.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from normandy_core.binding import Signature, source_of, variables_of
from normandy_core.plan import Flow, Plan, Task

Data = tuple[str, str]
"""``(scope, name)``: a variable of flow ``scope``, or a dataset (scope ``""``)."""

SHARED = ""
"""The scope of data every flow sees (datasets)."""


@dataclass(frozen=True)
class TaskData:
    """What a task reads and writes."""

    reads: tuple[Data, ...] = ()
    writes: tuple[Data, ...] = ()

    def variables_read(self, flow: str) -> tuple[str, ...]:
        """The names of the variables (of ``flow``) it reads."""
        return tuple(name for scope, name in self.reads if scope == flow)


def task_data(
    task: Task, signature: Signature | None, datasets: Collection[str] = ()
) -> TaskData:
    """What ``task`` reads — its inputs (by name, or as ``inputs`` maps them, in a
    template's scope; an optional one's too; several mapped to one parameter, its ``*``
    or ``**`` one too; params are not data), the variables it declares it reads through
    ``pipe.vars``, and for a mapped task the variable it maps over — and what it writes
    (its declared outputs; for a mapped task, the variables its elements' outputs are
    collected into). An input or output named like one of ``datasets`` is that dataset
    (scope :data:`SHARED`)."""
    given = task.map.param if task.map is not None else None
    if task.element is not None and task.entry is not None and task.entry.map is not None:
        given = task.entry.map.param
    names: list[str] = []
    if signature is not None:  # a parameter's source (SPEC 20): a variable, several, params
        for p in signature.inputs:
            if p.name != given:
                names.extend(variables_of(source_of(p.name, task.inputs, task.scope)))
        for star in (signature.star, signature.star_star):
            if star and star in task.inputs:
                names.extend(variables_of(task.inputs[star]))
    names += task.reads
    if task.map is not None:
        names.append(task.map.variable)
    outputs = task.outputs.names if task.outputs is not None else ()

    def scoped(name: str) -> Data:
        return (SHARED if name in datasets else task.flow, name)

    return TaskData(
        tuple(scoped(name) for name in dict.fromkeys(names)),
        tuple(scoped(name) for name in outputs),
    )


def plan_data(
    plan: Plan,
    signature_of: Callable[[str], Signature | None],
    datasets: Collection[str] = (),
) -> dict[str, TaskData]:
    """:func:`task_data` of every task of ``plan``, by key (signatures read once per
    process); ``datasets``: the names of the project's datasets."""
    known: dict[str, Signature | None] = {}
    found = {}
    for task in plan.tasks():
        if task.process not in known:
            known[task.process] = signature_of(task.process)
        found[task.key] = task_data(task, known[task.process], datasets)
    return found


def waits_for(flow: Flow, data: Mapping[str, TaskData]) -> dict[str, set[str]]:
    """Under ``dataflow``: for each task of ``flow``, by key, the keys of the tasks of
    the flow it waits for (see the module's docstring)."""
    waits: dict[str, set[str]] = {}
    last_writer: dict[Data, str] = {}
    readers: dict[Data, list[str]] = {}
    """The readers of each name's current version (since its last writer)."""
    for step in flow.steps:
        for task in step.tasks:
            deps = waits.setdefault(task.key, set())
            for name in data[task.key].reads:
                writer = last_writer.get(name)
                if writer is not None:
                    deps.add(writer)
                readers.setdefault(name, []).append(task.key)
        written: dict[Data, str] = {}
        for task in step.tasks:
            deps = waits[task.key]
            for name in data[task.key].writes:
                writer = last_writer.get(name)
                if writer is not None:
                    deps.add(writer)
                deps.update(r for r in readers.get(name, ()) if r != task.key)
                written[name] = task.key
        for name, writer in written.items():
            last_writer[name] = writer
            readers[name] = []
    return waits


def shared(data: Iterable[TaskData]) -> tuple[set[Data], set[Data]]:
    """What tasks read and write of the data shared by flows: ``(reads, writes)``."""
    reads: set[Data] = set()
    writes: set[Data] = set()
    for d in data:
        reads.update(n for n in d.reads if n[0] == SHARED)
        writes.update(n for n in d.writes if n[0] == SHARED)
    return reads, writes


def flows_after(
    plan: Plan, data: Mapping[str, TaskData], side_by_side: bool
) -> dict[str, set[str]]:
    """For each flow of ``plan``, the earlier flows it must wait for: every one before it
    where flows run one after another (``steps``); under ``dataflow``
    (``side_by_side``), those it shares data with — one writes what the other reads or
    writes — and no other (SPEC 20)."""
    after: dict[str, set[str]] = {}
    seen: list[tuple[str, set[Data], set[Data]]] = []
    for flow in plan.flows:
        reads, writes = shared(data.get(t.key, TaskData()) for s in flow.steps for t in s.tasks)
        if side_by_side:
            after[flow.name] = {name for name, r, w in seen if writes & (r | w) or reads & w}
        else:
            after[flow.name] = {seen[-1][0]} if seen else set()
        seen.append((flow.name, reads, writes))
    return after


@dataclass(frozen=True)
class Schedule:
    """How a run orders its tasks: ``dataflow`` or not (``steps``); under ``dataflow``,
    what each task waits for (flow -> task key -> keys); for each flow, the flows it
    waits for."""

    dataflow: bool = False
    waits: Mapping[str, Mapping[str, set[str]]] = field(default_factory=dict)
    after: Mapping[str, set[str]] = field(default_factory=dict)


def schedule_of(plan: Plan, data: Mapping[str, TaskData] | None) -> Schedule:
    """``steps`` without ``data``; else ``dataflow`` over what each task reads and writes
    (flows that share nothing side by side)."""
    if data is None:
        return Schedule(False, {}, flows_after(plan, {}, side_by_side=False))
    return Schedule(
        True,
        {flow.name: waits_for(flow, data) for flow in plan.flows},
        flows_after(plan, data, side_by_side=True),
    )
