"""The live view of a run on a terminal (rich, imported only here and only when stderr is a
terminal): the current flow and step, each running task with its elapsed time, the counts
and a progress bar, redrawn in place; finished tasks, retries and every line a process
logs are printed above it and stay in the scrollback.

Events only update the state and queue lines: rich's refresh thread prints the queued
lines and redraws the view, a few times a second, so the cost of drawing does not grow
with the number of tasks or log lines.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from normandy_cli._output import imports_shown, plural, secs
from normandy_cli._progress import (
    COUNTED,
    DONE,
    SKIPPED,
    Progress,
    elapsed,
    ended_text,
    failure_text,
    printable,
)
from normandy_core.status import CACHED, FAILED, INTERRUPTED, SUCCEEDED, TOLERATED, label

if TYPE_CHECKING:
    from normandy_core.outcomes import Outcome, Summary, TaskError
    from normandy_core.plan import Flow, Task

STYLES = {
    DONE: "green",
    SUCCEEDED: "green",
    FAILED: "bold red",
    TOLERATED: "yellow",
    SKIPPED: "dim",
    CACHED: "cyan",
    INTERRUPTED: "magenta",
    "crashed": "bold red",
    "timed out": "bold red",
}
_SHOWN_RUNNING = 12  # rows of running tasks before "… and N more"
_LOG_STYLES = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "bold red"}
_HEAD = re.compile(r"\d\d:\d\d:\d\d (\S+)")
"""The start of a log record's first line: its time and level."""
_BACKLOG = 2000
"""Lines queued at most: past it, the log thread prints them itself (a chatty task then
waits for the terminal rather than filling memory)."""


class LiveProgress(Progress):
    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        # task names like fetch[paris] are text, not markup
        self.console = Console(
            file=stream, highlight=False, soft_wrap=True, markup=False, emoji=False
        )
        fancy = (self.console.encoding or "").lower().startswith("utf")
        self.marks = {
            DONE: "✔" if fancy else "+",
            FAILED: "✖" if fancy else "x",
            TOLERATED: "⚠" if fancy else "!",
            SKIPPED: "↷" if fancy else ">",
            CACHED: "≡" if fancy else "=",
            INTERRUPTED: "■" if fancy else "#",
            "retry": "↻" if fancy else "~",
            "flow": "▶" if fancy else ">",
        }
        self.spinners: dict[str, Spinner] = {}
        self.pending: list[Text] = []
        """Lines to print above the view at its next refresh."""
        self.live = _Live(
            self._flush,
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=8,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def __enter__(self) -> LiveProgress:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._flush()
        self.live.stop()

    # -- lines above the live view -------------------------------------------------------------

    def write(self, text: str) -> int:
        """Lines processes logged, from the log thread: each record in the style of its
        level (its later lines too), control characters escaped."""
        lines, style = [], ""
        for line in printable(text).rstrip("\n").split("\n"):
            head = _HEAD.match(line)
            if head is not None:
                style = _LOG_STYLES.get(head.group(1), "")
            lines.append(Text(line, style=style))
        with self.lock:
            self.pending.extend(lines)
            backlog = len(self.pending) >= _BACKLOG
        if backlog and self.live.is_started:
            self.live.refresh()
        return len(text)

    def _queue(self, line: Text) -> None:
        with self.lock:
            self.pending.append(line)

    def _flush(self) -> None:
        """Print the queued lines above the view, at once (never holding ``self.lock``
        while printing: rich's refresh thread takes it to draw the view)."""
        with self.lock:
            lines, self.pending = self.pending, []
        if lines:
            self.console.print(Group(*lines))

    def _print(self, mark: str, text: str, style: str = "") -> None:
        """A line of the display's own (task names and errors escaped)."""
        self._queue(Text.assemble((f"{self.marks[mark]} ", style), (printable(text), style)))

    def flow_started(self, flow: Flow) -> None:
        super().flow_started(flow)
        tasks = sum(len(s.tasks) for s in flow.steps)
        self._print(
            "flow",
            f"flow {flow.name}: {plural(len(flow.steps), 'step')}, {plural(tasks, 'task')}",
            "bold",
        )

    def flow_skipped(self, flow: Flow) -> None:
        super().flow_skipped(flow)
        self._print(SKIPPED, f"flow {flow.name} not started: an earlier flow failed", "yellow")

    def task_retrying(self, task: Task, attempt: int, error: TaskError, delay: float) -> None:
        super().task_retrying(task, attempt, error, delay)
        self._print(
            "retry",
            f"{task.key} attempt {attempt} failed ({error.kind}): {error.type}: "
            f"{error.message}; retrying in {delay:g}s",
            "yellow",
        )

    def task_ended(self, outcome: Outcome) -> None:
        super().task_ended(outcome)
        self.spinners.pop(outcome.task.key, None)
        key = outcome.task.key
        if outcome.status == SUCCEEDED:
            again = f" ({plural(outcome.attempts, 'attempt')})" if outcome.attempts > 1 else ""
            self._print(DONE, f"{key}  {secs(outcome.duration)}{again}", "green")
        elif outcome.status == CACHED:  # reused or resumed: one line, never a failure's
            self._print(CACHED, f"{key} {ended_text(outcome)}", "dim")
        elif outcome.status == INTERRUPTED:
            self._print(INTERRUPTED, f"{key} interrupted", STYLES[INTERRUPTED])
        else:
            mark = TOLERATED if outcome.tolerated else FAILED
            self._print(mark, f"{key} {failure_text(outcome)}", STYLES[mark])
            if outcome.error and outcome.error.traceback:
                self._queue(Text(printable(outcome.error.traceback.rstrip()), style="dim"))

    def flow_ended(self, flow: Flow, status: str) -> None:
        super().flow_ended(flow, status)
        if status != SUCCEEDED:
            later = f" ({plural(self.not_started, 'task')} not started)" if self.not_started else ""
            self._print(FAILED, f"flow {flow.name} failed{later}", "bold red")

    # -- the live view -------------------------------------------------------------------------

    def _render(self) -> RenderableType:
        with self.lock:
            if self.run is None or self.plan is None:
                return Text("starting…", style="dim")
            now = time.time()
            head = Text.assemble(
                ("run ", "dim"),
                (self.run.id, "bold"),
                (f" · env {self.run.env} · {self.run.executor}, ", "dim"),
                (plural(self.run.workers, "worker"), "dim"),
                (f" · {elapsed(self.run.started, now)}", "dim"),
            )
            where = Text()
            if self.flow is not None:
                where.append(f"flow {self.flow.name}", "bold cyan")
                where.append(f" ({self.flow_number}/{len(self.plan.flows)})", "dim")
            if self.step is not None and self.flow is not None:
                where.append(" › ", "dim")
                where.append(f"step {self.step.name}", "bold")
                where.append(f" ({self.step_number}/{len(self.flow.steps)})", "dim")
            return Group(head, where, self._running(now), self._bar())

    def _running(self, now: float) -> RenderableType:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(width=1)
        grid.add_column(no_wrap=True)
        grid.add_column(justify="right", no_wrap=True)
        grid.add_column(style="dim", no_wrap=True)
        running = [e for e in self.running.values() if e.since is not None]
        queued = len(self.running) - len(running)
        shown = (
            running
            + [e for e in self.running.values() if e.since is None][
                : max(0, _SHOWN_RUNNING - len(running))
            ]
        )
        for entry in shown[:_SHOWN_RUNNING]:
            key = entry.task.key
            again = f" · attempt {entry.attempt}" if entry.attempt > 1 else ""
            name = printable(entry.task.name)
            if entry.since is None:
                grid.add_row(Text("·", style="dim"), name, "", f"queued{again}")
                continue
            spinner = self.spinners.setdefault(key, Spinner("dots", style="cyan"))
            worker = f"worker {entry.pid}" if entry.pid else ""
            grid.add_row(spinner, name, elapsed(entry.since, now), worker + again)
        hidden = len(self.running) - min(len(shown), _SHOWN_RUNNING)
        if hidden:
            waiting = f", {queued} waiting for a worker" if queued else ""
            grid.add_row("", Text(f"… and {hidden} more{waiting}", style="dim"))
        return grid

    def _bar(self) -> RenderableType:
        line = Table.grid(padding=(0, 1))
        line.add_column(width=40)
        line.add_column(no_wrap=True)
        counts = Text(f"{self.finished}/{self.total} tasks ", style="bold")
        for what in COUNTED:
            if what in (CACHED, INTERRUPTED) and not self.counts[what]:
                continue  # shown once there are some
            style = STYLES[what] if self.counts[what] else "dim"
            counts.append(f" {self.counts[what]} {what}", style)
        line.add_row(ProgressBar(total=max(self.total, 1), completed=self.finished), counts)
        return line

    # -- the end -------------------------------------------------------------------------------

    def print_summary(self, summary: Summary) -> None:
        grid = Table(box=None, padding=(0, 1), header_style="bold", pad_edge=False)
        imports = imports_shown(o.import_duration for o in summary.outcomes)
        columns = ["FLOW", "STEP", "TASK", "STATUS", "ATTEMPTS", "DURATION"]
        for column in columns + ["IMPORT"] * imports:
            grid.add_column(column, justify="left" if column in columns[:5] else "right")
        for o in summary.outcomes:
            status = label(o.status, o.tolerated, o.resumed, o.cached_from)
            style = STYLES[TOLERATED] if o.tolerated else STYLES.get(o.status, "dim")
            cells: list[Any] = [
                o.task.flow,
                o.task.step,
                printable(o.task.name),
                Text(status, style=style),
                str(o.attempts),
                secs(o.duration) if o.started else "-",
            ]
            if imports:
                cells.append(secs(o.import_duration) if o.started else "-")
            grid.add_row(*cells)
        self.console.print()
        self.console.print(grid)


class _Live(Live):
    """A rich Live that prints the lines queued above it before each redraw."""

    def __init__(self, flush: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._flush = flush

    def refresh(self) -> None:
        self._flush()
        super().refresh()
