"""The run history as an observer of the run's events (SPEC 8): what happens is written as
it happens, one transaction each time the orchestrator waits."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from normandy_core.errors import HistoryError
from normandy_core.events import RunObserver
from normandy_core.history import History, VariableAccess
from normandy_core.outcomes import Attempt, Outcome, Summary
from normandy_core.plan import Task
from normandy_core.status import CACHED

HEARTBEAT = 5.0
"""Seconds between a run's signs of life in the history, while its tasks run: a run whose
process is killed reads as lasting until its last one."""


class HistoryRecorder(RunObserver):
    """Writes the events of the run ``run_id`` to ``history``.

    The orchestrator runs in a :meth:`History.batch`: events are kept and written at each
    ``waiting``, with a heartbeat at most every :data:`HEARTBEAT` seconds. A history locked
    by another program does not stop the run: its events are kept, written at a later
    wait, and the first such wait is reported through ``report``.
    """

    def __init__(
        self,
        history: History,
        run_id: str,
        report: Callable[[int, str], None],
    ) -> None:
        self.history = history
        self.run_id = run_id
        self.report = report
        self.last_beat = time.time()
        self.warned = False

    def resumed(self, outcomes: Iterable[Outcome]) -> None:
        """Tasks that succeeded in the run this one resumes: recorded as done at once."""
        for outcome in outcomes:
            self.history.task_ended(self.run_id, outcome)

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

    def task_ended(self, outcome: Outcome) -> None:
        self.history.task_ended(self.run_id, outcome)
        if outcome.status == CACHED and outcome.writes:  # what stands for its writes
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
        try:
            self.history.flush()
        except HistoryError as exc:
            if not self.warned:
                self.warned = True
                self.report(logging.WARNING, f"{exc}; the run goes on and writes it later")

    def run_ended(self, summary: Summary) -> None:
        self.history.end_run(
            self.run_id,
            summary.status,
            reason=summary.reason,
            log_problems=summary.log_problems,
            ended=summary.ended,
        )
