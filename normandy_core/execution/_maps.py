"""Running a mapped task (SPEC 19): its elements become tasks as it is reached (the
variable it maps over read from the flow's committed variables), and once they have all
ended, what they made is collected, in order, into the variables its entry ``outputs``.

The mapped task itself runs nothing: it is recorded as the group of its elements
(status ``mapped``), with the collected variables as its writes and, for a partial run
that leaves it out later, a fingerprint of what they came from.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from normandy_core.execution._reuse import Reuse
from normandy_core.execution._variables import RunVariables
from normandy_core.mapping import MapError, collect, elements_of
from normandy_core.outcomes import Outcome, TaskError
from normandy_core.plan import Task, element_part, element_task
from normandy_core.status import CACHED, FAILED, MAPPED, SUCCEEDED

_NAMED = 5
"""Failed elements named in the mapped task's error, at most."""


@dataclass
class _Mapped:
    task: Task
    value: Any
    elements: tuple[Task, ...]
    left: set[str] = field(default_factory=set)


class Maps:
    """The mapped tasks of a run that have fanned out and not ended yet."""

    def __init__(
        self, variables: RunVariables, outcomes: dict[str, Outcome], reuse: Reuse | None
    ) -> None:
        self.variables = variables
        self.outcomes = outcomes
        self.reuse = reuse
        self.running: dict[str, _Mapped] = {}

    def expand(self, task: Task) -> tuple[Task, ...]:
        """The tasks of ``task``'s elements (each with its outcome), from the committed
        value of the variable it maps over; :class:`MapError` where there is none, or it
        cannot be mapped."""
        assert task.map is not None
        outcome = self.outcomes[task.key]
        outcome.started = time.time()
        try:
            value = self.variables.value(task.flow, task.map.variable)
        except KeyError:
            raise MapError(
                f"map: {task.map.variable} does not exist: no earlier step of flow "
                f"{task.flow!r} wrote it (or the task that writes it failed, tolerated)"
            ) from None
        secrets = self.reuse.mask.secrets if self.reuse is not None else ()
        elements = elements_of(value, task.map, task.key, secrets)
        tasks = tuple(element_task(task, element) for element in elements)
        for element in tasks:
            self.outcomes[element.key] = Outcome(element)
        self.variables.elements(task.flow, {e.read: e.hash for e in elements})
        self.running[task.key] = _Mapped(task, value, tasks, {t.key for t in tasks})
        if self.reuse is not None:
            self.reuse.prefetch(tasks)
        return tasks

    def failed(self, task: Task, error: MapError) -> Outcome:
        """``task`` could not fan out: it failed, with ``error`` (its own failure)."""
        outcome = self.outcomes[task.key]
        outcome.status, outcome.ended = FAILED, time.time()
        outcome.error = TaskError(FAILED, "MapError", str(error))
        outcome.tolerated = task.error_tolerance
        return outcome

    def element_ended(self, task: Task) -> Task | None:
        """An element's task ended: its mapped task, once every element has."""
        assert task.element is not None
        mapped = self.running[task.element.parent]
        mapped.left.discard(task.key)
        return None if mapped.left else mapped.task

    def end(self, task: Task) -> Outcome:
        """Every element of ``task`` has ended (or it has none): collect what they made,
        unless one failed untolerated."""
        mapped = self.running.pop(task.key)
        outcome = self.outcomes[task.key]
        outcome.status, outcome.started = MAPPED, outcome.started or time.time()
        ended = [self.outcomes[t.key] for t in mapped.elements]
        failed = [o for o in ended if o.blocking]
        if failed:
            named = ", ".join(o.task.name for o in failed[:_NAMED])
            more = f" and {len(failed) - _NAMED} more" if len(failed) > _NAMED else ""
            outcome.error = TaskError(
                FAILED,
                "ElementsFailed",
                f"{len(failed)} of {len(ended)} elements failed ({named}{more}): what the "
                "elements made was not collected",
            )
        else:
            self._collect(mapped, [o for o in ended if o.status in (SUCCEEDED, CACHED)])
        outcome.ended = time.time()
        return outcome

    def _collect(self, mapped: _Mapped, done: list[Outcome]) -> None:
        task, outcome = mapped.task, self.outcomes[mapped.task.key]
        assert task.map is not None
        if task.outputs is not None:
            got = []
            for o in done:
                element = o.task.element
                assert element is not None
                part = element_part(element.key)
                values = {
                    n: self.variables.written(o.task, f"{n}[{part}]") for n in task.outputs.names
                }
                got.append((element, values))
            writes = self.variables.write(task, collect(task.outputs, mapped.value, got))
            conflict = self.variables.attempt_succeeded(task, writes)
            if conflict is not None:
                outcome.status, outcome.tolerated = FAILED, task.error_tolerance
                outcome.error = TaskError(FAILED, "VariableConflict", conflict)
                return
            outcome.writes, outcome.variables = writes, tuple(w[0] for w in writes)
        if self.reuse is not None:
            variable = task.map.variable
            content_hash = self.variables.hash_of(task.flow, variable)
            outcome.fingerprint = self.reuse.of_group(task, variable, content_hash)

    def interrupted(self) -> list[Outcome]:
        """The mapped tasks that had fanned out when the run was stopped."""
        return [self.outcomes[key] for key in self.running]
