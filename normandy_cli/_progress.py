"""``normandy run``'s progress on stderr and the summary that ends it.

:class:`Progress` follows a run's events (it is a :class:`RunObserver`) and keeps what a
display needs: where the run stands, which tasks run since when, the counts. Two displays
share it: :class:`PlainProgress` writes one line per event (stderr not a terminal, or
``--no-progress``: CI logs stay readable), ``normandy_cli._live.LiveProgress`` a live
view with rich on a terminal. Both end with the summary table of every task.

Lines a process logs or prints reach the console through :meth:`Progress.write`, so that
they never cut through the progress display. On a terminal, what processes wrote is shown
with its control characters escaped (:func:`printable`): a task cannot clear the screen,
move the cursor or retitle the window. The log files keep the text as written.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from normandy_cli._output import imports_shown, plural, secs, table
from normandy_core.events import RunObserver
from normandy_core.status import (
    CACHED,
    FAILED,
    INTERRUPTED,
    MAPPED,
    SUCCEEDED,
    TOLERATED,
    category,
    describe_tally,
    label,
    tally,
)
from normandy_core.units import TimeOfDay

if TYPE_CHECKING:
    from normandy_core.outcomes import Outcome, RunInfo, Summary, TaskError, TaskOutcome
    from normandy_core.plan import Flow, Plan, Step, Task

DONE, SKIPPED = "done", "skipped"
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""What a terminal acts on rather than shows: ESC and the other C0 controls but tab and
newline, DEL, and the C1 controls (CSI and others, in their 8-bit forms)."""
COUNTED = (DONE, CACHED, FAILED, TOLERATED, SKIPPED, INTERRUPTED)
"""What the progress counts, in display order."""


@dataclass
class Running:
    """A task submitted to the executor: ``since`` is ``None`` while it waits for a worker;
    ``pool`` names the pool it waits for, before it is submitted."""

    task: Task
    attempt: int
    pid: int | None = None
    since: float | None = None
    pool: str | None = None

    @property
    def state(self) -> str:
        """What it waits for: ``waiting (pool db)``, ``queued`` (for a worker), or ``""``
        (it runs)."""
        if self.pool is not None:
            return f"waiting (pool {self.pool})"
        return "queued" if self.since is None else ""


@dataclass
class Group:
    """A mapped task's elements as they end (:meth:`Progress.task_mapped`)."""

    task: Task
    size: int
    ended: Counter[str]


class Progress(RunObserver):
    """The state of a run, as its events tell it. Event methods run in the orchestrator's
    thread; displays read under ``self.lock``."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.terminal = _is_tty(stream)
        """Whether text from processes is escaped (:func:`printable`) before it is shown."""
        self.lock = threading.RLock()
        self.run: RunInfo | None = None
        self.plan: Plan | None = None
        self.total = 0
        self.counts: Counter[str] = Counter()
        self.flow: Flow | None = None
        self.flow_number = 0
        self.step: Step | None = None
        self.step_number = 0
        self.running: dict[str, Running] = {}
        self.groups: dict[str, Group] = {}
        """The mapped tasks whose elements run, by key."""
        self.flows: dict[str, Flow] = {}
        """The flows started and not ended (several side by side under ``dataflow``)."""
        self.steps: dict[tuple[str, str], Step] = {}
        """The steps started and not ended (several at once under ``dataflow``)."""
        self.ended: set[str] = set()
        self.not_started = 0
        """Tasks of the last flow that ended that did not run (its failure stopped them)."""

    # -- the console -------------------------------------------------------------------------

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def write(self, text: str) -> int:
        """Lines a process logged (from the log thread), or the display's own."""
        shown = printable(text) if self.terminal else text
        with self.lock:
            self.stream.write(shown)
            self.stream.flush()
        return len(text)

    def flush(self) -> None:
        pass

    def print_summary(self, summary: Summary) -> None:
        """The table of every task, then the counts."""
        table = summary_table(summary)
        self.stream.write("\n" + (printable(table) if self.terminal else table) + "\n")
        self.stream.flush()

    # -- the state ---------------------------------------------------------------------------

    @property
    def finished(self) -> int:
        return sum(self.counts.values())

    def _count(self, keys: list[str], what: str) -> None:
        new = [key for key in keys if key not in self.ended]
        self.ended.update(new)
        self.counts[what] += len(new)

    def _not_started(self, flow: Flow) -> int:
        """Count the tasks of ``flow`` that will not run as skipped; return how many."""
        before = self.counts[SKIPPED]
        self._count([t.key for s in flow.steps for t in s.tasks], SKIPPED)
        return self.counts[SKIPPED] - before

    def run_started(self, run: RunInfo) -> None:
        with self.lock:
            self.run, self.plan, self.total = run, run.plan, len(run.plan)

    def flow_started(self, flow: Flow) -> None:
        with self.lock:
            self.flow, self.step, self.step_number = flow, None, 0
            self.flow_number += 1
            self.flows[flow.name] = flow

    def flow_skipped(self, flow: Flow) -> None:
        with self.lock:
            self.flow_number += 1
            self._not_started(flow)

    def step_started(self, step: Step) -> None:
        with self.lock:
            self.step = step
            self.step_number += 1
            self.steps[(step.flow, step.name)] = step

    def step_ended(self, step: Step, ok: bool) -> None:
        with self.lock:
            self.steps.pop((step.flow, step.name), None)

    def task_waiting(self, task: Task, pool: str) -> None:
        with self.lock:
            before = self.running.get(task.key)
            self.running[task.key] = Running(task, before.attempt + 1 if before else 1, pool=pool)

    def task_mapped(self, task: Task, elements: tuple[Task, ...]) -> None:
        with self.lock:
            self.total += len(elements) - 1  # its elements are counted, not it
            self.groups[task.key] = Group(task, len(elements), Counter())

    def task_submitted(self, task: Task, attempt: int) -> None:
        with self.lock:
            self.running[task.key] = Running(task, attempt)

    def task_started(self, task: Task, attempt: int, pid: int | None, when: float) -> None:
        with self.lock:
            self.running[task.key] = Running(task, attempt, pid, when)

    def task_retrying(self, task: Task, attempt: int, error: TaskError, delay: float) -> None:
        with self.lock:
            self.running.pop(task.key, None)

    def task_ended(self, outcome: Outcome) -> None:
        with self.lock:
            task = outcome.task
            self.running.pop(task.key, None)
            if outcome.status == MAPPED:  # the group: its elements are counted
                self.ended.add(task.key)
                return
            what = counted(outcome)
            self._count([task.key], what)
            if task.element is not None and task.element.parent in self.groups:
                self.groups[task.element.parent].ended[what] += 1

    def flow_ended(self, flow: Flow, status: str) -> None:
        with self.lock:
            self.flows.pop(flow.name, None)
            self.not_started = self._not_started(flow)

    def group_of(self, outcome: Outcome) -> str:
        """How the elements of a mapped task ended: ``handle[*]: 97 done, 3 failed``
        (and, where some failed untolerated, that nothing was collected)."""
        group = self.groups.pop(outcome.task.key, None)
        counts = group.ended if group is not None else Counter()
        shown = ", ".join(f"{n} {what}" for what, n in counts.items() if n) or "no element"
        text = f"{outcome.task.key}[*]: {shown}"
        if outcome.error is not None:
            text += "; its outputs were not collected"
        return text


def counted(outcome: Outcome) -> str:
    """How the progress counts a task that ended: done, cached (reused or resumed),
    failed, tolerated, skipped or interrupted."""
    what = category(outcome.status, outcome.tolerated, outcome.resumed)
    return {
        SUCCEEDED: DONE,
        CACHED: CACHED,
        FAILED: FAILED,
        TOLERATED: TOLERATED,
        INTERRUPTED: INTERRUPTED,
    }.get(what, SKIPPED)


def describe_counts(counts: Counter[str]) -> str:
    """``7 done, 1 failed, 1 tolerated, 0 skipped`` (cached and interrupted only when some
    were)."""
    shown = [what for what in COUNTED if what not in (CACHED, INTERRUPTED) or counts[what]]
    return ", ".join(f"{counts[what]} {what}" for what in shown)




def printable(text: str) -> str:
    """``text`` with its control characters (see ``_CONTROLS``) written as escapes
    (``\\x1b[2J`` for a clear-screen), tabs and newlines as they are."""
    if _CONTROLS.search(text) is None:
        return text
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def ended_text(outcome: Outcome) -> str:
    """What became of a task, in a line of the progress: ``succeeded in 1.20s``,
    ``cached (from RUN_ID)``, ``interrupted``, or its failure (:func:`failure_text`)."""
    if outcome.status == SUCCEEDED:
        again = f" ({plural(outcome.attempts, 'attempt')})" if outcome.attempts > 1 else ""
        return f"succeeded in {secs(outcome.duration)}{again}"
    if outcome.status == CACHED:
        return f"cached (from {outcome.cached_from})"
    if outcome.status == INTERRUPTED:
        return "interrupted"
    return failure_text(outcome)


def failure_text(outcome: Outcome) -> str:
    """``FAILED after 2 attempts (crashed): WorkerCrashed: …``."""
    error = outcome.error
    what = "failed (tolerated)" if outcome.tolerated else "FAILED"
    detail = f"{error.type}: {error.message}" if error else ""
    kind = error.kind if error else outcome.status
    return f"{what} after {plural(outcome.attempts, 'attempt')} ({kind}): {detail}"


@dataclass(frozen=True)
class Row:
    """A row of the summary: a task, or a mapped task's elements (``task[*]``)."""

    outcome: TaskOutcome
    name: str
    status: str
    attempts: int
    waited: float


def summary_rows(summary: Summary) -> list[Row]:
    """The summary's rows. A mapped task's elements are one row, ``task[*]``, with their
    tally (attempts and waits summed), followed by those that did not succeed; the others
    are in the history and the report."""
    elements: dict[str, list[TaskOutcome]] = {}
    for o in summary.outcomes:
        if o.task.element is not None:
            elements.setdefault(o.task.element.parent, []).append(o)
    rows = []
    for o in summary.outcomes:
        if o.task.element is not None:
            continue
        status = label(o.status, o.tolerated, o.resumed, o.cached_from)
        mine = elements.get(o.task.key)
        if o.status != MAPPED or mine is None:
            rows.append(Row(o, o.task.name, status, o.attempts, o.waited))
            continue
        counts = tally((e.status, e.tolerated, e.resumed) for e in mine)
        shown = describe_tally(counts) + ("; not collected" if o.error is not None else "")
        attempts, waited = sum(e.attempts for e in mine), sum(e.waited for e in mine)
        rows.append(Row(o, f"{o.task.name}[*]", shown, attempts, waited))
        for e in mine:
            if e.status not in (SUCCEEDED, CACHED):
                status = label(e.status, e.tolerated, e.resumed, e.cached_from)
                rows.append(Row(e, e.task.name, status, e.attempts, e.waited))
    return rows


def counted_tasks(summary: Summary) -> int:
    """How many tasks the run had: a mapped task's elements, not it."""
    return sum(1 for o in summary.outcomes if o.status != MAPPED)


def summary_table(summary: Summary) -> str:
    """Every task: flow, step, task, status, attempts, duration, the time its worker
    spent importing its module (IMPORT, where some task's worker did) and the time it
    waited for a pool (WAITED, where some task did)."""
    imports = imports_shown(o.import_duration for o in summary.outcomes)
    waited = any(o.waited >= 0.05 for o in summary.outcomes)
    rows = []
    for r in summary_rows(summary):
        o = r.outcome
        duration = secs(o.duration) if o.started else "-"
        row = [o.task.flow, o.task.step, r.name, r.status, r.attempts, duration]
        if imports:
            row.append(secs(o.import_duration) if o.started else "-")
        if waited:
            row.append(secs(r.waited) if r.waited else "-")
        rows.append(tuple(row))
    headers = ["FLOW", "STEP", "TASK", "STATUS", "ATTEMPTS", "DURATION"]
    return table(headers + ["IMPORT"] * imports + ["WAITED"] * waited, rows)


class PlainProgress(Progress):
    """One line per event: ``HH:MM:SS [finished/total] what happened``.

    The lines of the orchestrator's events are held until it waits for its tasks (or
    anything else is written), then written together: a write per event, with the locks
    and the thread switches it brings, was a fifth of a no-op task's cost. Nothing waits
    behind them: they are out before the orchestrator waits."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self._held: list[str] = []
        self._time = TimeOfDay()

    def _line(self, text: str) -> None:
        stamp = self._time(time.time())
        with self.lock:
            self._held.append(f"{stamp} [{self.finished}/{self.total}] {text}\n")

    def write(self, text: str) -> int:
        with self.lock:
            if self._held:
                super().write("".join([*self._held, text]))
                self._held.clear()
                return len(text)
            return super().write(text)

    def flush(self) -> None:
        with self.lock:
            if self._held:
                self.write("")

    def waiting(self) -> None:
        self.flush()

    def print_summary(self, summary: Summary) -> None:
        self.flush()
        super().print_summary(summary)

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def run_started(self, run: RunInfo) -> None:
        super().run_started(run)
        self._line(
            f"run {run.id}: {plural(self.total, 'task')} in {plural(len(run.plan.flows), 'flow')}"
            f", env {run.env}, executor {run.executor}, {plural(run.workers, 'worker')}"
        )

    def flow_started(self, flow: Flow) -> None:
        super().flow_started(flow)
        tasks = sum(len(s.tasks) for s in flow.steps)
        self._line(
            f"flow {flow.name} started: {plural(len(flow.steps), 'step')}, {plural(tasks, 'task')}"
        )

    def flow_skipped(self, flow: Flow) -> None:
        super().flow_skipped(flow)
        self._line(
            f"flow {flow.name} not started: an earlier flow failed (use --keep-going to run it "
            "anyway)"
        )

    def step_started(self, step: Step) -> None:
        super().step_started(step)
        self._line(f"step {step.flow}.{step.name} started: {plural(len(step.tasks), 'task')}")

    def task_waiting(self, task: Task, pool: str) -> None:
        super().task_waiting(task, pool)
        self._line(f"{task.key} waiting (pool {pool})")

    def task_mapped(self, task: Task, elements: tuple[Task, ...]) -> None:
        super().task_mapped(task, elements)
        over = task.map.variable if task.map is not None else "?"
        self._line(f"{task.key} mapped over {over}: {plural(len(elements), 'task')}")

    def task_started(self, task: Task, attempt: int, pid: int | None, when: float) -> None:
        super().task_started(task, attempt, pid, when)
        if task.element is not None:  # a map's elements: shown as a group
            return
        where = f"worker {pid}" if pid else "worker unknown"
        again = f", attempt {attempt}" if attempt > 1 else ""
        self._line(f"{task.key} started ({where}{again})")

    def task_retrying(self, task: Task, attempt: int, error: TaskError, delay: float) -> None:
        super().task_retrying(task, attempt, error, delay)
        self._line(
            f"{task.key} attempt {attempt} failed ({error.kind}): {error.type}: "
            f"{error.message}; retrying in {delay:g}s"
        )

    def task_ended(self, outcome: Outcome) -> None:
        """One line per task, whatever became of it (a reused task: ``cached (from
        RUN_ID)``); a failure's traceback under it. A map's elements that succeeded or
        were reused are shown as their group (``handle[*]: 97 done, 3 failed``)."""
        group = self.group_of(outcome) if outcome.status == MAPPED else None
        super().task_ended(outcome)
        if group is not None:
            self._line(group)
            return
        if outcome.status in (SUCCEEDED, CACHED) and outcome.task.element is not None:
            return
        self._line(f"{outcome.task.key} {ended_text(outcome)}")
        error = outcome.error
        if outcome.status not in (SUCCEEDED, CACHED, INTERRUPTED) and error and error.traceback:
            self.write(_indent(error.traceback))

    def step_ended(self, step: Step, ok: bool) -> None:
        super().step_ended(step, ok)
        self._line(f"step {step.flow}.{step.name} {'ended' if ok else 'failed'}")

    def flow_ended(self, flow: Flow, status: str) -> None:
        super().flow_ended(flow, status)
        if status == SUCCEEDED:
            self._line(f"flow {flow.name} succeeded")
        else:
            skipped = self.not_started
            later = f" ({plural(skipped, 'task')} not started)" if skipped else ""
            self._line(f"flow {flow.name} failed; its later steps did not start{later}")

    def run_ended(self, summary: Summary) -> None:
        if summary.status == INTERRUPTED:
            self._line("interrupted: running tasks were stopped")
        self.flush()


def _indent(text: str) -> str:
    return "".join(f"    {line}\n" for line in text.rstrip().splitlines())


def open_progress(no_progress: bool, stream: IO[str] | None = None) -> Progress:
    """The live view where ``stream`` (stderr) is a terminal, else plain lines."""
    from normandy_core._capture import console_stream  # stderr, even while a task captures it

    stream = stream or console_stream()
    if not no_progress and _is_terminal(stream):
        from normandy_cli._live import LiveProgress

        return LiveProgress(stream)
    return PlainProgress(stream)


def _is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal a live view can be drawn on."""
    return _is_tty(stream) and os.environ.get("TERM") != "dumb"


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def elapsed(since: float | None, now: float | None = None) -> str:
    """``12.3s``, ``4m05s``, ``1h02m``."""
    if since is None:
        return ""
    seconds = max(0.0, (now or time.time()) - since)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"
