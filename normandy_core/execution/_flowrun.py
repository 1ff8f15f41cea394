"""How far one flow of a run has got (SPEC 7, 19): which of its tasks may start now,
which steps have started and ended, and what a failure stops.

- ``steps`` (:class:`StepGate`): a step starts once the step before it has ended without
  a failure that stops the flow; its writes are committed as it ends.
- ``dataflow`` (:class:`DataGate`): a task starts once the tasks it waits for
  (:func:`normandy_core.dependencies.waits_for`) have ended; its writes are committed as
  it succeeds. A step starts with its first task and ends with its last.

Either way, an untolerated failure stops what depends on it — with ``steps``, every later
step; with ``dataflow``, the tasks that wait for it, and theirs — while the rest goes on,
and the flow is failed. A tolerated failure stops nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from normandy_core.execution._events import EventBus
from normandy_core.execution._variables import RunVariables
from normandy_core.outcomes import Outcome
from normandy_core.plan import Flow, Step, Task
from normandy_core.status import CACHED, FAILURES, MAPPED, SUCCEEDED


class _StepRun:
    def __init__(self, step: Step) -> None:
        self.step = step
        self.tasks: list[Task] = list(step.tasks)
        self.left: set[str] = {t.key for t in step.tasks}
        """Keys of its tasks that have not ended (nor been stopped)."""
        self.succeeded: list[Task] = []
        self.started = False
        self.ended = False
        self.failed = False


class FlowRun:
    """One flow's progress; the scheduler tells it what ended (:meth:`ended`) and gets the
    tasks that may start now. Steps' events (``step_started``, ``step_ended``) are told
    here, and writes committed as the schedule says."""

    def __init__(self, flow: Flow, events: EventBus, variables: RunVariables) -> None:
        self.flow = flow
        self.events = events
        self.variables = variables
        self.steps = [_StepRun(step) for step in flow.steps]
        self.step_of: dict[str, _StepRun] = {t.key: s for s in self.steps for t in s.tasks}
        self.failed = False
        """An untolerated failure happened in it: it is failed."""
        self.stopped: set[str] = set()
        """Tasks that will not start (what they wait for failed)."""

    @property
    def done(self) -> bool:
        return all(not s.left for s in self.steps)

    def start(self) -> list[Task]:
        """The tasks that may start as the flow starts."""
        raise NotImplementedError

    def add(self, parent: Task, elements: Iterable[Task]) -> None:
        """The elements of the mapped ``parent`` are tasks of its step."""
        step = self.step_of[parent.key]
        for task in elements:
            step.tasks.append(task)
            step.left.add(task.key)
            self.step_of[task.key] = step

    def ended(self, outcome: Outcome) -> list[Task]:
        """``outcome.task`` ended: the tasks that may start now."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------

    def _open(self, step: _StepRun) -> None:
        if not step.started:
            step.started = True
            self.events.step_started(step.step)

    def _close(self, step: _StepRun) -> None:
        """A step whose tasks all ended (or will not start) has ended, if it started."""
        if step.left or step.ended:
            return
        step.ended = True
        if step.started:
            self._committed(step)
            self.events.step_ended(step.step, not step.failed)

    def _committed(self, step: _StepRun) -> None:
        """Its writes as it ends (none left under ``dataflow``)."""

    def _record(self, outcome: Outcome) -> tuple[_StepRun, bool, bool]:
        """Note how a task ended: its step, whether it succeeded (its writes are there),
        and whether what waits for it may start (it succeeded, was reused, or its failure
        is tolerated)."""
        task = outcome.task
        step = self.step_of[task.key]
        step.left.discard(task.key)
        succeeded = outcome.status in (SUCCEEDED, CACHED) or (
            outcome.status == MAPPED and outcome.error is None
        )
        if succeeded:
            step.succeeded.append(task)
        if outcome.blocking:
            step.failed = self.failed = True
        return step, succeeded, succeeded or (outcome.status in FAILURES and outcome.tolerated)


class StepGate(FlowRun):
    """``schedule: steps``: steps one after another (SPEC 7)."""

    def start(self) -> list[Task]:
        return self._next(0)

    def _next(self, index: int) -> list[Task]:
        for step in self.steps[index:]:
            if step.tasks:
                self._open(step)
                return list(step.tasks)
            step.ended = True  # an empty step: nothing to wait for
        return []

    def ended(self, outcome: Outcome) -> list[Task]:
        step, _, _ = self._record(outcome)
        if step.left:
            return []
        self._close(step)
        index = self.steps.index(step)
        if step.failed:  # no later step starts
            for later in self.steps[index + 1 :]:
                self.stopped.update(later.left)
                later.left.clear()
                later.ended = True
            return []
        return self._next(index + 1)

    def _committed(self, step: _StepRun) -> None:
        self.variables.step_ended(step.succeeded)


class DataGate(FlowRun):
    """``schedule: dataflow``: each task once what it waits for has ended."""

    def __init__(
        self,
        flow: Flow,
        events: EventBus,
        variables: RunVariables,
        waits: Mapping[str, set[str]],
    ) -> None:
        super().__init__(flow, events, variables)
        self.waits = {key: set(keys) for key, keys in waits.items()}
        self.dependents: dict[str, list[str]] = {}
        for key, keys in self.waits.items():
            for other in keys:
                self.dependents.setdefault(other, []).append(key)
        self.tasks = {t.key: t for s in self.steps for t in s.tasks}

    def start(self) -> list[Task]:
        ready = [t for s in self.steps for t in s.tasks if not self.waits.get(t.key)]
        self._opened(ready)
        for step in self.steps:
            if not step.tasks:
                step.ended = True
        return ready

    def _opened(self, ready: list[Task]) -> None:
        for task in ready:  # in plan order: steps start in order
            self._open(self.step_of[task.key])

    def ended(self, outcome: Outcome) -> list[Task]:
        task = outcome.task
        step, succeeded, goes_on = self._record(outcome)
        if succeeded:
            self.variables.commit(task)
        ready: list[Task] = []
        touched = {id(step): step}
        for key in self.dependents.get(task.key, ()):
            if key in self.stopped:
                continue
            if not goes_on:
                for stopped in self._stop(key):
                    touched[id(stopped)] = stopped
                continue
            waiting = self.waits[key]
            waiting.discard(task.key)
            if not waiting:
                ready.append(self.tasks[key])
        ready.sort(key=lambda t: self._order(t))
        self._opened(ready)
        for other in touched.values():
            self._close(other)
        return ready

    def _stop(self, key: str) -> list[_StepRun]:
        """``key`` and what waits for it, transitively, will not start; their steps."""
        steps = []
        todo = [key]
        while todo:
            current = todo.pop()
            if current in self.stopped:
                continue
            self.stopped.add(current)
            step = self.step_of[current]
            step.left.discard(current)
            steps.append(step)
            todo.extend(self.dependents.get(current, ()))
        return steps

    def _order(self, task: Task) -> int:
        return self.steps.index(self.step_of[task.key])
