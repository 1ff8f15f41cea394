"""Watching a run as it goes: the events the orchestrator emits, as the methods of
:class:`RunObserver`.

The run's log lines are written by an observer (:class:`normandy_core.logs.LogObserver`),
and the command line's progress display is another; anything that wants to follow a run
(a notifier, a metrics exporter) subclasses :class:`RunObserver`, overrides the methods
it needs and is passed in ``RunOptions.observers``.

Every method is called in the orchestrating process's main thread, in the order things
happen: ``run_started``, then for each flow ``flow_started`` (or ``flow_skipped``), for
each step ``step_started``, for each task ``task_decided`` (where fingerprints are
used) then ``task_cached`` or, per attempt, ``task_waiting`` (where it waits for units of
a pool) → ``task_submitted`` → ``task_started`` → ``attempt_ended`` → ``task_retrying``
(a failed attempt that will be tried again), and once ``task_ended``; then
``step_ended``, ``flow_ended`` and, whatever happened, ``run_ended``. A mapped task
(``map:``) gets ``task_mapped`` with its elements, which follow as tasks of their own,
then its ``task_ended``. The tasks of a step interleave, and ``waiting`` comes each time
the orchestrator is about to wait for its tasks. After Ctrl-C, the step and flow that were
running get no end event: ``attempt_ended`` and ``task_ended`` come for each interrupted
task, then ``run_ended``.

Under ``confs.schedule: dataflow`` the steps of a flow overlap (a step starts with its
first task, and ends with its last), and so may flows that share no data: their events
interleave.

Observers run between the scheduling of tasks: keep them quick (no I/O beyond a write to
a terminal or a file). An observer that raises is reported in the run's log and not
called again; the run goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from normandy_core.outcomes import Attempt, Outcome, RunInfo, Summary, TaskError
    from normandy_core.plan import Flow, Step, Task


class RunObserver:
    """Receives a run's events; every method does nothing unless overridden."""

    def run_started(self, run: RunInfo) -> None:
        """The run is recorded and about to start its first flow."""

    def flow_started(self, flow: Flow) -> None:
        """``flow`` starts its first step."""

    def flow_skipped(self, flow: Flow) -> None:
        """``flow`` is not started: an earlier flow failed (and no ``--keep-going``)."""

    def step_started(self, step: Step) -> None:
        """``step`` starts: its tasks are about to be submitted."""

    def task_resumed(self, task: Task, run_id: str) -> None:
        """``task`` succeeded in the run ``run_id`` that this one resumes: not run again."""

    def task_decided(self, task: Task, reused_from: str | None, reason: str) -> None:
        """As its step starts: whether ``task`` runs (``reused_from`` is ``None``) or the
        success of the run ``reused_from`` stands for it, and why (``--explain``'s words:
        ``cache off``, ``no earlier success``, ``code changed (MODULE)``…)."""

    def task_cached(self, task: Task, run_id: str) -> None:
        """An earlier success of ``task``, in the run ``run_id``, stands for it: not run,
        its variables bound into this run (``task_ended`` follows, status ``cached``)."""

    def task_waiting(self, task: Task, pool: str) -> None:
        """``task`` may run, but waits for units of the pool ``pool`` (``confs.pools``),
        held by tasks running: shown as *waiting (pool NAME)*; ``task_submitted`` follows
        once it has them."""

    def task_mapped(self, task: Task, elements: tuple[Task, ...]) -> None:
        """The mapped ``task`` (``map:``) fans out into ``elements``, one per element of the
        variable it maps over (``task[KEY]``), which follow as tasks of their own;
        ``task_ended`` comes for ``task`` once they have all ended (status ``mapped``)."""

    def task_submitted(self, task: Task, attempt: int) -> None:
        """Attempt ``attempt`` (from 1) of ``task`` is handed to the executor; it may wait
        for a free worker."""

    def task_started(self, task: Task, attempt: int, pid: int | None, when: float) -> None:
        """A worker (process ``pid``, ``None`` where unknown) started running the attempt at
        ``when`` (a ``time.time()``). Always comes before the attempt's end, but may come
        late: for an attempt too quick to be seen running, just before its end."""

    def attempt_ended(self, attempt: Attempt) -> None:
        """An attempt ended (``attempt.status``; ``attempt.error`` for a failure). Comes
        before the task's ``task_retrying`` or ``task_ended``."""

    def task_retrying(self, task: Task, attempt: int, error: TaskError, delay: float) -> None:
        """Attempt ``attempt`` failed with ``error``; the next one is submitted in ``delay``
        seconds."""

    def task_ended(self, outcome: Outcome) -> None:
        """``outcome.task`` ended after its last attempt (succeeded, failed, tolerated,
        crashed, timed out or interrupted)."""

    def step_ended(self, step: Step, ok: bool) -> None:
        """Every task of ``step`` ended; ``ok`` is false when a failure stops the flow."""

    def flow_ended(self, flow: Flow, status: str) -> None:
        """``flow`` ended: ``succeeded`` or ``failed`` (its later steps did not start)."""

    def waiting(self) -> None:
        """The orchestrator is about to wait for its tasks: a moment to write out what was
        kept in memory (the history does)."""

    def run_ended(self, summary: Summary) -> None:
        """The run ended (succeeded, failed or interrupted) and its history is written."""
