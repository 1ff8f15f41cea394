"""Telling a run's observers what happens, in order (see :mod:`normandy_core.events`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from normandy_core.events import RunObserver

if TYPE_CHECKING:
    from normandy_core.outcomes import Attempt, Outcome, RunInfo, Summary, TaskError
    from normandy_core.plan import Flow, Step, Task


class EventBus(RunObserver):
    """A :class:`RunObserver` that calls each event on every observer, in the order given:
    the scheduler tells it what happens as typed calls (``events.task_cached(task,
    run_id)``), never by an event's name.

    Normandy's own observers (the history, the log files, the hooks) are trusted: an error
    of theirs is an error of the run. A *guest* (a display, an observer passed by an
    embedding program) that raises is reported through ``report`` and not called again:
    the run goes on.
    """

    def __init__(
        self,
        observers: Iterable[RunObserver],
        guests: Iterable[RunObserver] = (),
        report: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.observers = list(observers)
        self.guests = {id(guest) for guest in guests}
        self.report = report

    def _each(self, event: str, call: Callable[[RunObserver], None]) -> None:
        for observer in list(self.observers):
            try:
                call(observer)
            except Exception as exc:
                if id(observer) not in self.guests:
                    raise
                self.observers.remove(observer)
                if self.report is not None:
                    self.report(
                        f"the run observer {type(observer).__qualname__} failed in {event} "
                        "and is no longer called",
                        exc,
                    )

    def run_started(self, run: RunInfo) -> None:
        self._each("run_started", lambda o: o.run_started(run))

    def flow_started(self, flow: Flow) -> None:
        self._each("flow_started", lambda o: o.flow_started(flow))

    def flow_skipped(self, flow: Flow) -> None:
        self._each("flow_skipped", lambda o: o.flow_skipped(flow))

    def step_started(self, step: Step) -> None:
        self._each("step_started", lambda o: o.step_started(step))

    def task_resumed(self, task: Task, run_id: str) -> None:
        self._each("task_resumed", lambda o: o.task_resumed(task, run_id))

    def task_decided(self, task: Task, reused_from: str | None, reason: str) -> None:
        self._each("task_decided", lambda o: o.task_decided(task, reused_from, reason))

    def task_cached(self, task: Task, run_id: str) -> None:
        self._each("task_cached", lambda o: o.task_cached(task, run_id))

    def task_waiting(self, task: Task, pool: str) -> None:
        self._each("task_waiting", lambda o: o.task_waiting(task, pool))

    def task_mapped(self, task: Task, elements: tuple[Task, ...]) -> None:
        self._each("task_mapped", lambda o: o.task_mapped(task, elements))

    def task_submitted(self, task: Task, attempt: int) -> None:
        self._each("task_submitted", lambda o: o.task_submitted(task, attempt))

    def task_started(self, task: Task, attempt: int, pid: int | None, when: float) -> None:
        self._each("task_started", lambda o: o.task_started(task, attempt, pid, when))

    def attempt_ended(self, attempt: Attempt) -> None:
        self._each("attempt_ended", lambda o: o.attempt_ended(attempt))

    def task_retrying(self, task: Task, attempt: int, error: TaskError, delay: float) -> None:
        self._each("task_retrying", lambda o: o.task_retrying(task, attempt, error, delay))

    def task_ended(self, outcome: Outcome) -> None:
        self._each("task_ended", lambda o: o.task_ended(outcome))

    def step_ended(self, step: Step, ok: bool) -> None:
        self._each("step_ended", lambda o: o.step_ended(step, ok))

    def flow_ended(self, flow: Flow, status: str) -> None:
        self._each("flow_ended", lambda o: o.flow_ended(flow, status))

    def waiting(self) -> None:
        self._each("waiting", lambda o: o.waiting())

    def run_ended(self, summary: Summary) -> None:
        self._each("run_ended", lambda o: o.run_ended(summary))
