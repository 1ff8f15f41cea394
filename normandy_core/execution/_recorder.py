"""The run history as an observer of the run's events (SPEC 8): what happens is written as
it happens, one transaction each time the orchestrator waits."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from normandy_core.errors import HistoryError
from normandy_core.events import RunObserver
from normandy_core.history import History, TaskStart, VariableAccess
from normandy_core.outcomes import Attempt, Outcome, Summary
from normandy_core.plan import Task
from normandy_core.status import CACHED, MAPPED

HEARTBEAT = 5.0
"""Seconds between a run's signs of life in the history, while its tasks run: a run whose
process is killed reads as lasting until its last one."""

FLUSH_EVERY = 0.05
"""Seconds a run's records may wait to be written together: a fan-out of short tasks
commits a few times a second, not at every wake (once or twice per task), and what the
history shows of a run lags by no more than this."""


class HistoryRecorder(RunObserver):
    """Writes the events of the run ``run_id`` to ``history``.

    The orchestrator runs in a :meth:`History.batch`: events are kept and written at a
    ``waiting`` at most every :data:`FLUSH_EVERY` seconds (:meth:`due` says when the
    scheduler must wake to write what waits), with a heartbeat at most every
    :data:`HEARTBEAT` seconds. A history locked
    by another program does not stop the run: its events are kept, written at a later
    wait, and the first such wait is reported through ``report``.
    """

    def __init__(
        self,
        history: History,
        run_id: str,
        report: Callable[[int, str], None],
        mask: Callable[[dict[str, Any]], dict[str, Any]] = lambda params: params,
    ) -> None:
        self.history = history
        self.mask = mask
        """Params as they may be stored (credentials masked)."""
        self.run_id = run_id
        self.report = report
        self.last_beat = time.time()
        self.last_flush = 0.0
        self.deferred = False
        """Records wait to be written (a ``waiting`` came too soon after the last write)."""
        self.warned = False

    def resumed(self, outcomes: Iterable[Outcome]) -> None:
        """Tasks that succeeded in the run this one resumes: recorded as done at once."""
        for outcome in outcomes:
            self.history.task_ended(self.run_id, outcome)

    def task_waiting(self, task: Task, pool: str) -> None:
        self.history.task_waiting(self.run_id, task.key, pool)

    def task_mapped(self, task: Task, elements: tuple[Task, ...]) -> None:
        shown = self.mask(dict(task.params))  # the elements have their task's params
        starts = [TaskStart(t.key, t.flow, t.step, t.name, t.process, shown) for t in elements]
        self.history.tasks_added(self.run_id, task.key, starts, time.time())

    def task_submitted(self, task: Task, attempt: int) -> None:
        self.history.attempt_started(self.run_id, task.key, attempt, time.time())

    def attempt_ended(self, attempt: Attempt) -> None:
        self.history.attempt_ended(
            self.run_id,
            attempt.task.key,
            attempt.number,
            attempt.status,
            attempt.started,
            attempt.ended or time.time(),
            attempt.pid,
            attempt.error,
            attempt.fingerprint,
            attempt.import_duration,
        )
        if attempt.reads or attempt.writes:
            self.history.lineage(
                self.run_id,
                attempt.task.key,
                attempt.number,
                [
                    VariableAccess(attempt.task.flow, name, "read", h, size)
                    for name, h, size in attempt.reads
                ]
                + [
                    VariableAccess(attempt.task.flow, name, "write", h, size, kind)
                    for name, h, size, kind in attempt.writes
                ],
            )
        if attempt.datasets:
            self.history.dataset_lineage(
                self.run_id, attempt.task.key, attempt.number, attempt.task.flow, attempt.datasets
            )

    def task_ended(self, outcome: Outcome) -> None:
        self.history.task_ended(self.run_id, outcome)
        if outcome.status in (CACHED, MAPPED) and outcome.writes:  # what its writes are
            self.history.lineage(
                self.run_id,
                outcome.task.key,
                0,
                [
                    VariableAccess(outcome.task.flow, name, "write", h, size, kind)
                    for name, h, size, kind in outcome.writes
                ],
            )

    def waiting(self) -> None:
        now = time.time()
        if now - self.last_beat >= HEARTBEAT:
            self.history.heartbeat(self.run_id, now)
            self.last_beat = now
        if now - self.last_flush < FLUSH_EVERY:
            self.deferred = True  # written at the wake :meth:`due` asks for
            return
        self.deferred = False
        self.last_flush = now
        try:
            self.history.flush()
        except HistoryError as exc:
            if not self.warned:
                self.warned = True
                self.report(logging.WARNING, f"{exc}; the run goes on and writes it later")

    def due(self) -> float | None:
        """Seconds until the records waiting must be written (the scheduler wakes then),
        ``None`` where none waits."""
        if not self.deferred:
            return None
        return max(0.0, self.last_flush + FLUSH_EVERY - time.time())

    def run_ended(self, summary: Summary) -> None:
        self.history.end_run(
            self.run_id,
            summary.status,
            reason=summary.reason,
            log_problems=summary.log_problems,
            ended=summary.ended,
        )
