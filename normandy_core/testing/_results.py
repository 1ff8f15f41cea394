"""What :func:`run_process` gives back: :class:`ProcessResult`, its :class:`Outputs`, and
the words a failing test shows about the process (its error, the tail of its log)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG_TAIL = 20
"""How many of the last lines of a process's log a failure shows."""


class ProcessFailed(AssertionError):
    """Raised by :meth:`ProcessResult.check` for a process that failed: the message holds
    its error with its traceback (credentials masked, as in a run's log) and the tail of
    its log; :attr:`result` is the :class:`ProcessResult`."""

    def __init__(self, result: ProcessResult) -> None:
        super().__init__(result.describe())
        self.result = result


class MissingOutput(KeyError):
    """``result.outputs[name]`` where the process gave no variable ``name``: the message
    says why (it failed, it returned a value no entry stores, it wrote other names)."""

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return str(self.args[0])


class Outputs(dict[str, Any]):
    """The variables a process wrote or returned, by name (a ``dict``). Reading a name it
    did not give raises :class:`MissingOutput` saying why."""

    def __init__(self, values: dict[str, Any], why_missing: Any = None) -> None:
        super().__init__(values)
        self._why_missing = why_missing

    def __missing__(self, name: str) -> Any:
        __tracebackhide__ = True  # pytest shows the test's line, and this message
        reason = self._why_missing(name) if self._why_missing else f"no output {name!r}"
        raise MissingOutput(reason)


@dataclass(frozen=True)
class LogLine:
    """One line of a process's log, as its log file shows it (without the time)."""

    level: str
    text: str
    printed: bool
    """Printed (``print``, a subprocess's output) rather than logged."""

    def __str__(self) -> str:
        return f"{self.level:<8} {self.text}"


@dataclass(frozen=True, repr=False)
class ProcessResult:
    """How one call of :func:`run_process` went.

    The process ran as a task of a run does: its arguments bound by name, its return
    value split by its entry's ``outputs``, its log and output masked and captured, its
    writes kept only if it succeeded.
    """

    name: str
    """The process's registered name."""
    value: Any
    """What the process returned (``None`` where it failed before returning)."""
    outputs: Outputs
    """The variables it wrote (``pipe.vars``) or returned (through its entry's
    ``outputs``), by name, read back from the store: empty where it failed, since a run
    discards a failed task's writes."""
    records: list[logging.LogRecord]
    """What it logged — through ``log``, its modules' loggers and its libraries' — at the
    run's log level, as :class:`logging.LogRecord` objects whose message is masked."""
    stdout: str
    """What it printed to standard output (its subprocesses' output included), masked,
    one line per line printed."""
    stderr: str
    """The same for standard error."""
    error: BaseException | None
    """The exception the process raised (or that its return or inputs caused: an
    ``OutputError``, a ``MissingInput``), ``None`` where it succeeded."""
    traceback: str = ""
    """The error's traceback as a run's log shows it (credentials masked); ``""``."""
    entry: str | None = None
    """``flow.step.task``: the project's entry whose options applied, if one did."""
    path: Path | None = None
    """The project root the process saw as ``pipe.path``."""
    lines: Sequence[LogLine] = field(default_factory=tuple)
    """Its whole log, logged and printed lines in order."""

    @property
    def ok(self) -> bool:
        """Whether the process succeeded."""
        return self.error is None

    @property
    def messages(self) -> list[str]:
        """The messages of :attr:`records`, in order."""
        return [record.getMessage() for record in self.records]

    @property
    def log(self) -> str:
        """Its whole log as text, a line per line: ``LEVEL    message``."""
        return "".join(f"{line}\n" for line in self.lines)

    def check(self) -> ProcessResult:
        """This result, if the process succeeded; else raise :class:`ProcessFailed`
        with its error, traceback and log tail (``run_process(...).check().outputs``)."""
        __tracebackhide__ = True
        if self.error is not None:
            # the masked traceback, not the error itself: pytest would show the values
            # of the frames' arguments, and they may hold credentials
            raise ProcessFailed(self) from None
        return self

    def describe(self, tail: int = LOG_TAIL) -> str:
        """What a failing test shows of this call: how it ended, the error with its
        traceback, and the last ``tail`` lines of its log."""
        head = f"process {self.name!r}"
        if self.entry:
            head += f" (entry {self.entry})"
        parts = [f"{head} {'succeeded' if self.ok else 'failed'}"]
        if self.error is not None:
            parts.append(self.traceback.rstrip("\n") or error_line(self.error))
        parts.append(log_tail(self.lines, tail))
        return "\n".join(parts)

    def __repr__(self) -> str:
        how = "ok" if self.ok else f"failed: {error_line(self.error)}"
        names = ", ".join(self.outputs) or "none"
        return (
            f"<ProcessResult {self.name!r} {how}; outputs: {names}; "
            f"{len(self.lines)} log line{'' if len(self.lines) == 1 else 's'}>"
        )


def error_line(error: BaseException | None) -> str:
    """``Type: message``, on one line."""
    if error is None:
        return ""
    try:
        text = str(error)
    except Exception:  # noqa: BLE001 - a process's own __str__
        text = "?"
    first = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def log_tail(lines: Sequence[Any], tail: int = LOG_TAIL) -> str:
    """``log (last N of M lines):`` and those lines, indented; ``log: empty``."""
    if not lines:
        return "log: empty"
    shown = list(lines)[-tail:]
    title = "log:"
    if len(shown) < len(lines):
        title = f"log (last {len(shown)} of {len(lines)} lines):"
    return "\n".join([title, *(f"  {line}" for line in shown)])
