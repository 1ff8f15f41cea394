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
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from normandy_cli._output import imports_shown, plural, secs, table
from normandy_core.events import RunObserver
from normandy_core.status import (
    CACHED,
    FAILED,
    INTERRUPTED,
    SUCCEEDED,
    TOLERATED,
    category,
    label,
)

if TYPE_CHECKING:
    from normandy_core.outcomes import Outcome, RunInfo, Summary, TaskError
    from normandy_core.plan import Flow, Plan, Step, Task

DONE, SKIPPED = "done", "skipped"
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""What a terminal acts on rather than shows: ESC and the other C0 controls but tab and
newline, DEL, and the C1 controls (CSI and others, in their 8-bit forms)."""
COUNTED = (DONE, CACHED, FAILED, TOLERATED, SKIPPED, INTERRUPTED)
"""What the progress counts, in display order."""


@dataclass
class Running:
    """A task submitted to the executor: ``since`` is ``None`` while it waits for a worker."""

    task: Task
    attempt: int
    pid: int | None = None
    since: float | None = None


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

    def flow_skipped(self, flow: Flow) -> None:
        with self.lock:
            self.flow_number += 1
            self._not_started(flow)

    def step_started(self, step: Step) -> None:
        with self.lock:
            self.step = step
            self.step_number += 1

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
            self.running.pop(outcome.task.key, None)
            self._count([outcome.task.key], counted(outcome))

    def flow_ended(self, flow: Flow, status: str) -> None:
        with self.lock:
            self.not_started = self._not_started(flow)


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


def summary_table(summary: Summary) -> str:
    """Every task: flow, step, task, status, attempts, duration, and the time its worker
    spent importing its module (IMPORT, where some task's worker did)."""
    imports = imports_shown(o.import_duration for o in summary.outcomes)
    rows = []
    for o in summary.outcomes:
        duration = secs(o.duration) if o.started else "-"
        status = label(o.status, o.tolerated, o.resumed, o.cached_from)
        row = [o.task.flow, o.task.step, o.task.name, status, o.attempts, duration]
        if imports:
            row.append(secs(o.import_duration) if o.started else "-")
        rows.append(tuple(row))
    headers = ["FLOW", "STEP", "TASK", "STATUS", "ATTEMPTS", "DURATION"]
    return table(headers + ["IMPORT"] * imports, rows)


class PlainProgress(Progress):
    """One line per event: ``HH:MM:SS [finished/total] what happened``."""

    def _line(self, text: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        self.write(f"{stamp} [{self.finished}/{self.total}] {text}\n")

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

    def task_started(self, task: Task, attempt: int, pid: int | None, when: float) -> None:
        super().task_started(task, attempt, pid, when)
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
        RUN_ID)``); a failure's traceback under it."""
        super().task_ended(outcome)
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
