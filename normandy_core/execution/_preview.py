"""What ``run --dry-run --explain`` says (SPEC 13): each task's decision, made as the run
would make it, step by step, without running anything — and where it depends on what a
task that runs will write, saying so: ``run or reuse: reads NAME, which TASK writes in
this run``.

A task that runs is taken to write the outputs its entry declares, and the variables and
files it wrote the last time it ran; a task that never ran with a trace may write any
variable (where it can: it takes ``pipe``) and any file. So the dry run never says
``reuse`` where the run will run, nor ``run (…)`` where the run will reuse.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from normandy_core.execution._reuse import Decision, Reuse
from normandy_core.execution._world import UNKNOWN
from normandy_core.plan import Plan, Task
from normandy_core.store import Place
from normandy_core.trace import (
    DATASET,
    DATASET_WRITTEN,
    FILE,
    FOLDER,
    LISTING,
    VARIABLE,
    WRITTEN,
    describe,
)


class Preview:
    """The variables of a run not started, step by step: the hashes of what reused
    tasks bind, :data:`UNKNOWN` for what tasks that run may write (and who writes it)."""

    def __init__(self) -> None:
        self._clock = itertools.count(1)
        self._hashes: dict[str, dict[str, tuple[str, str | None, int]]] = {}
        """Flow -> variable -> (hash, the task that runs and writes it, when)."""
        self._wild: dict[str, list[tuple[str, int]]] = {}
        """Flow -> the tasks that run and may write any variable, and when."""
        self._staged: list[tuple[str, str | None, str, str | None]] = []
        self.files: dict[str, str] = {}
        """File -> the task that runs and writes it."""
        self.wild_files: list[str] = []
        """Tasks that run and may write any file."""
        self.datasets: dict[str, str] = {}
        """Dataset -> the task that runs and saves it."""
        self.unsure: dict[tuple[str, str], str] = {}
        """What the decision being made asked that a task that runs may change: (kind,
        name) -> that task."""

    # -- as RunVariables --------------------------------------------------------------------

    def hash_of(self, flow: str, name: str) -> str | None:
        entry = self._hashes.get(flow, {}).get(name)
        since = entry[2] if entry is not None else 0
        wild = [task for task, when in self._wild.get(flow, ()) if when > since]
        if wild:
            self.unsure[(VARIABLE, name)] = wild[-1]
            return UNKNOWN
        if entry is not None and entry[1] is not None:
            self.unsure[(VARIABLE, name)] = entry[1]
            return UNKNOWN
        return entry[0] if entry is not None else None

    def names(self, flow: str) -> list[str]:
        known = self._hashes.get(flow, {})
        makers = [m for _, m, _ in known.values() if m] + [t for t, _ in self._wild.get(flow, ())]
        if makers:
            self.unsure[(LISTING, "variables")] = makers[-1]
            return [*sorted(known), UNKNOWN]
        return sorted(known)

    def bind(
        self, task: Task, name: str, source: Place, content_hash: str, *, resolved: bool = False
    ) -> None:
        self._staged.append((task.flow, name, content_hash, None))

    def borrow(self, flow: str, name: str, content_hash: str) -> None:
        self._hashes.setdefault(flow, {})[name] = (content_hash, None, next(self._clock))

    # -- a step -----------------------------------------------------------------------------

    def runs(self, task: Task, variables: Sequence[str], anything: bool) -> None:
        """``task`` runs in this step: it writes ``variables`` (or, ``anything``, any)."""
        for name in variables:
            self._staged.append((task.flow, name, UNKNOWN, task.key))
        if anything:
            self._staged.append((task.flow, None, UNKNOWN, task.key))

    def runs_files(self, task: Task, files: Sequence[str] | None) -> None:
        """``task`` runs and writes ``files`` (``None``: it may write any)."""
        if files is None:
            self.wild_files.append(task.key)
        else:
            self.files.update(dict.fromkeys(files, task.key))

    def runs_datasets(self, task: Task, names: Sequence[str]) -> None:
        """``task`` runs and saves the datasets ``names``."""
        self.datasets.update(dict.fromkeys(names, task.key))

    def step_ended(self) -> None:
        when = next(self._clock)
        for flow, name, content_hash, maker in self._staged:
            if name is None:
                self._wild.setdefault(flow, []).append((maker or "", when))
            else:
                self._hashes.setdefault(flow, {})[name] = (content_hash, maker, when)
        self._staged = []

    def unsure_file(self, kind: str, path: str) -> bool:
        """Whether a task that runs before may change the file, folder or dataset
        ``path`` (noting which in :attr:`unsure`)."""
        if kind in (DATASET, DATASET_WRITTEN):
            maker = self.datasets.get(path)
        else:
            maker = self.files.get(path) if kind == FILE else None
        if maker is None and self.wild_files:
            maker = self.wild_files[-1]
        if maker is None:
            return False
        self.unsure[(kind, path)] = maker
        return True


def preview(reuse: Reuse, variables: Preview, plan: Plan) -> list[Decision]:
    """What ``run --explain`` would say of each task, without running anything: a task
    fed by one that runs may still be reused, if what it reads comes out the same."""
    reuse.now.unsure = variables.unsure_file
    decisions = []
    for flow in plan.flows:
        for step in flow.steps:
            for task in step.tasks:
                variables.unsure = {}
                if task.map is not None:  # its elements are known once it runs
                    decisions.append(_mapped(reuse, variables, task))
                    continue
                decision = reuse.decide(task)
                if decision.reused:
                    reuse.bind(decision)
                else:
                    decision = _runs(reuse, variables, decision)
                decisions.append(decision)
            variables.step_ended()
    return decisions


def _mapped(reuse: Reuse, variables: Preview, task: Task) -> Decision:
    """A mapped task: its elements are known, and decided, only as it fans out; what they
    make, collected, is taken to change (and, where its process may, anything else)."""
    assert task.map is not None
    declared = list(task.outputs.names) if task.outputs else []
    variables.runs(task, declared, reuse.process(task).writes_undeclared)
    variables.runs_files(task, None)
    reason = f"mapped over {task.map.variable}: each element decided as it fans out"
    return Decision(task, None, reason)


def _runs(reuse: Reuse, variables: Preview, decision: Decision) -> Decision:
    """A task that runs (or may): what it may write, and how its decision is said."""
    task = decision.task
    unsure = dict(variables.unsure)
    previous = reuse.history.successes(task.key, limit=1)
    written = [w.name for w in previous[0].writes] if previous else []
    declared = list(task.outputs.names) if task.outputs else []
    traced = previous and previous[0].fingerprint.trace.reads
    anything = not traced and reuse.process(task).writes_undeclared
    variables.runs(task, [*declared, *written], anything)
    files = list(previous[0].fingerprint.trace.note(WRITTEN)) if traced else None
    variables.runs_files(task, files)
    if reuse.datasets is not None:
        variables.runs_datasets(task, reuse.datasets.use.get(task.key, ((), ()))[1])
    return Decision(task, None, _said(decision.reasons or (decision.reason,), unsure, reuse))


def _said(reasons: Sequence[str], unsure: dict[tuple[str, str], str], reuse: Reuse) -> str:
    """``run (why)``'s words, or ``run or reuse: reads NAME, which TASK writes in this
    run`` where every reason is a read that a task running before may change."""
    maybe: dict[str, str] = {}
    for (kind, name), maker in unsure.items():
        shown = reuse.now.shown_path(name) if kind in (FILE, FOLDER) else name
        for reason in describe(kind, [shown]):
            maybe[reason] = f"reads {shown}, which {maker} writes in this run"
    sure = [r for r in reasons if r not in maybe]
    doubts = list(dict.fromkeys(maybe[r] for r in reasons if r in maybe))
    if not sure and doubts:
        return "run or reuse: " + "; ".join(doubts)
    return "; ".join([*sure, *doubts])
