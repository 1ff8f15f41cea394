"""A run's variables, as the orchestrator handles them (SPEC 5): a task's writes are
staged while it runs, kept when it succeeds, committed to its flow when its step ends,
discarded when it fails; two tasks of one step writing one name is a failure."""

from __future__ import annotations

from collections.abc import Iterable

from normandy_core.outcomes import Outcome
from normandy_core.plan import Plan, Task
from normandy_core.resume import Resume
from normandy_core.status import SUCCEEDED
from normandy_core.store import FlowStore, Place


class RunVariables:
    """The variables of one run, in its folder ``run_dir`` of the store."""

    def __init__(self, run_dir: Place) -> None:
        self.run_dir = run_dir
        self._flows: dict[str, FlowStore] = {}
        self._step_writes: dict[str, str] = {}
        """Variable -> the task of the running step that wrote it."""

    def flow(self, name: str) -> FlowStore:
        store = self._flows.get(name)
        if store is None:
            store = self._flows[name] = FlowStore(self.run_dir, name)
        return store

    # -- a step -----------------------------------------------------------------------------

    def step_started(self) -> None:
        self._step_writes = {}

    def attempt_starts(self, task: Task) -> None:
        """Drop what an earlier attempt of ``task`` left staged."""
        self.flow(task.flow).discard(task.key)

    def attempt_failed(self, task: Task) -> None:
        self.flow(task.flow).discard(task.key)

    def attempt_succeeded(self, task: Task) -> str | None:
        """Keep ``task``'s writes for the end of its step; or, where another task of the
        step wrote one of the same names, discard them and say why the task failed."""
        store = self.flow(task.flow)
        names = store.staged_names(task.key)
        clashes = [name for name in names if name in self._step_writes]
        if clashes:
            store.discard(task.key)
            others = ", ".join(f"{n!r} (also written by {self._step_writes[n]})" for n in clashes)
            return (
                f"{task.key} and another task of the same step wrote the variable {others}; "
                "give them different names"
            )
        for name in names:
            self._step_writes[name] = task.key
        return None

    def staged(self, task: Task) -> tuple[str, ...]:
        return tuple(self.flow(task.flow).staged_names(task.key))

    def step_ended(self, succeeded: Iterable[Task]) -> None:
        """Commit the writes of every task of the step that succeeded (SPEC 5)."""
        for task in succeeded:
            self.flow(task.flow).commit(task.key)

    # -- the run ----------------------------------------------------------------------------

    def take_over(self, resume: Resume, plan: Plan) -> None:
        """Start from the variables of the run ``resume`` resumes: commit what its
        succeeded tasks left staged (its orchestrator died before their step ended), then
        link its variables into this run (hard links where the store allows)."""
        for flow in plan.flows:
            old = FlowStore(resume.run_dir, flow.name)
            new = self.flow(flow.name)
            for step in flow.steps:
                for task in step.tasks:
                    if task.key in resume.succeeded and old.staging(task.key).exists():
                        old.commit(task.key)
            new.vars_dir.mkdir()
            for name in old.names():
                old.path(name).copy_to(new.path(name))

    def commit_leftovers(self, outcomes: Iterable[Outcome]) -> None:
        """Commit the writes of tasks that succeeded in a step the run did not finish
        (interrupted, or stopped by an error), so that a resumed run finds them."""
        for outcome in outcomes:
            if outcome.status == SUCCEEDED:
                store = self.flow(outcome.task.flow)
                if store.staging(outcome.task.key).exists():
                    store.commit(outcome.task.key)

    def clean_up(self) -> None:
        """Remove the run's staging folder (nothing is left there once committed)."""
        (self.run_dir / "staging").remove()
