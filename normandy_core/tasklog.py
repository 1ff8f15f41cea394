"""A task's logging, in its worker: the ``log`` a process receives, its printed output,
and the records of its modules' own loggers (``logging.getLogger(__name__)``, its
libraries'), as lines tagged with flow and task, masked, sent to the run's log queue.

Every line leaves the worker when the process logs or prints it (one write to the queue's
pipe per call, several lines at once when one call writes several): a task that crashes
or is killed at its timeout loses nothing it logged before. Printed text does not go
through :mod:`logging` at all: it is masked and sent as it is written.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from normandy_core.logs import LINES, LISTENER_THREAD
from normandy_core.masking import Masker

if TYPE_CHECKING:
    from normandy_core.worker import TaskCall

TASK_LOGGER = "normandy.task"
"""The name of the logger every task receives as ``log``."""

_OWN = ("normandy.", "normandy_core.", "normandy_cli.")
"""Normandy's own loggers: never a task's output (under ``serial`` the orchestrator runs
in the tasks' process)."""
_OWN_NAMES = frozenset({"normandy", "normandy_core", "normandy_cli"})


class TaskHandler(logging.Handler):
    """Masks a task's records and sends them, tagged with its flow and task, to the log
    queue; :meth:`send` does the same for lines it printed."""

    def __init__(self, call: TaskCall, queue: Any, masker: Masker) -> None:
        super().__init__()
        self.where = (call.flow, call.step, call.task, call.key)
        self.queue = queue
        self.masker = masker
        self._heads: dict[int, tuple[Any, ...]] = {}  # level -> the start of its messages
        # a queue between processes takes text without pickling it (PacketQueue)
        self._put_text = getattr(queue, "put_text", None)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.masker(record.getMessage())
        except Exception:  # a bad %-format: logging's own report of it, on stderr
            self.handleError(record)
            return
        if record.exc_info and record.exc_info[1] is not None:
            _, exc, tb = record.exc_info
            message += "\n" + self.masker.format_exception(exc, tb).rstrip("\n")
        elif record.exc_text:
            message += "\n" + self.masker(record.exc_text)
        if record.stack_info:
            message += "\n" + self.masker(record.stack_info)
        self._message(record.levelno, record.created, message)

    def _head(self, levelno: int) -> tuple[Any, ...]:
        head = self._heads.get(levelno)
        if head is None:
            name = logging.getLevelName(levelno)
            head = self._heads[levelno] = (LINES, *self.where, levelno, name)
        return head

    def _message(self, levelno: int, created: float, message: str) -> None:
        """One record's text (masked), filed as one record."""
        if self._put_text is not None:
            self._put_text(self._head(levelno), created, message)
        else:
            self.queue.put((*self._head(levelno), created, [message]))

    def send(self, levelno: int, created: float, lines: list[str]) -> None:
        """Lines the task wrote, each filed as one record (masked here, together: a
        multi-line secret written at once is masked whole)."""
        if self._put_text is not None:
            text = "\n".join(lines)
            if self.masker.secrets:
                text = self.masker(text)
            self._put_text(self._head(levelno), created, text, True)
            return
        if self.masker.secrets:
            text = "\n".join(lines)
            masked = self.masker(text)
            if masked is not text:
                lines = masked.split("\n")
        self.queue.put((*self._head(levelno), created, lines))

    def quick(self, level: int, msg: object, args: tuple[Any, ...]) -> bool:
        """Send ``msg % args`` as :meth:`emit` would send its record; ``False`` (nothing
        sent) where the standard way must do it (a message that does not format)."""
        try:
            if args:
                if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
                    args = args[0]  # type: ignore[assignment]  # as LogRecord does
                text = str(msg) % args
            else:
                text = str(msg)
        except Exception:  # noqa: BLE001 - logging reports it its way
            return False
        self._message(level, time.time(), self.masker(text))
        return True


class TaskLogger(logging.Logger):
    """The class of the ``log`` a process receives: a standard :class:`logging.Logger`
    with a shortcut for the common call — a message and its arguments, to Normandy's
    handler alone — which sends the line without making a :class:`~logging.LogRecord`
    (making one is most of what a log call costs: a chatty task logs several times
    faster). Anything else (``exc_info``, ``extra``, a filter or handler of the
    process's own) takes the standard way."""

    def _log(  # type: ignore[override]
        self,
        level: int,
        msg: object,
        args: Any,
        exc_info: Any = None,
        extra: Mapping[str, object] | None = None,
        stack_info: bool = False,
        stacklevel: int = 1,
    ) -> None:
        handlers = self.handlers
        if (
            exc_info is None
            and extra is None
            and not stack_info
            and len(handlers) == 1
            and type(handlers[0]) is TaskHandler
            and not (self.filters or self.disabled or handlers[0].filters)
            and level >= handlers[0].level
            and handlers[0].quick(level, msg, args)
        ):
            return
        # one frame more (this one) between the caller and logging's own
        super()._log(level, msg, args, exc_info, extra, stack_info, stacklevel + 1)


def task_logger(call: TaskCall, queue: Any, masker: Masker) -> logging.Logger:
    """The ``log`` of the task ``call``: records at its level or above go, masked and
    tagged, to ``queue`` (nowhere without one). Until its handler is removed, the
    records of the process's module loggers go the same way."""
    logger = _the_task_logger()
    if logger.level != call.log_level:  # setLevel clears every logger's cache
        logger.setLevel(call.log_level)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    if queue is not None:
        logger.addHandler(TaskHandler(call, queue, masker))
        _capture_module_loggers(logger, call.log_level)
    return logger


class _ModuleLoggers(logging.Handler):
    """On the root logger of a process that runs tasks: passes the records of every
    logger that reaches the root (a module's, a library's) to the task's handler — the
    one on the task's ``log``, while it is there — at the task's level. The rest
    (between tasks, Normandy's own loggers) goes where Python's last resort would put
    it without this handler, where no other handler is set: its warnings and errors on
    the process's own stderr (``sys.__stderr__``: not a task's, which is its output)."""

    def __init__(self, task_log: logging.Logger) -> None:
        super().__init__()
        self.task_log = task_log
        self.root_level = logging.root.level
        """The root logger's level before: restored by :func:`release_module_loggers`."""
        self.last_resort = logging.StreamHandler(sys.__stderr__)
        self.last_resort.setLevel(logging.WARNING)

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        name = record.name
        if not (
            name.startswith(_OWN)
            or name in _OWN_NAMES
            or record.threadName == LISTENER_THREAD  # the log thread's: it would loop
        ):
            for handler in self.task_log.handlers:
                if type(handler) is TaskHandler:
                    _mask_record(record, handler.masker)
                    if record.levelno >= self.task_log.level:
                        handler.handle(record)
                    return True
        if (
            record.levelno >= self.last_resort.level
            and logging.root.handlers == [self]
            and sys.__stderr__ is not None
        ):
            self.last_resort.handle(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


def _mask_record(record: logging.LogRecord, masker: Masker) -> None:
    """Mask a task's record in place, for the root logger's other handlers too (pytest's
    capture, where a test runs the process; a handler the process set up)."""
    if not masker.secrets:
        return
    with contextlib.suppress(Exception):  # a bad %-format: the handlers report it
        record.msg, record.args = masker(record.getMessage()), None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        _, exc, tb = record.exc_info
        record.exc_text = masker.format_exception(exc, tb).rstrip("\n")
    elif record.exc_text:
        record.exc_text = masker(record.exc_text)
    if record.stack_info:
        record.stack_info = masker(record.stack_info)


_module_loggers: _ModuleLoggers | None = None


def _capture_module_loggers(task_log: logging.Logger, level: int) -> None:
    """Route the root logger's records to the running task, at its level (once per
    process; a task's level only changes the root's where it differs)."""
    global _module_loggers
    root = logging.root
    if _module_loggers is None or _module_loggers not in root.handlers:
        _module_loggers = _ModuleLoggers(task_log)
        root.addHandler(_module_loggers)
    if root.handlers[0] is not _module_loggers:  # first: it masks what the others get
        root.removeHandler(_module_loggers)
        root.handlers.insert(0, _module_loggers)
    if root.level != level:  # a module logger's level is the root's unless it sets one
        root.setLevel(level)


def release_module_loggers() -> None:
    """Give the root logger back as it was (where tasks ran in a process that goes on:
    the orchestrator under ``serial``, a test)."""
    global _module_loggers
    if _module_loggers is not None:
        logging.root.removeHandler(_module_loggers)
        logging.root.setLevel(_module_loggers.root_level)
        _module_loggers = None


def _the_task_logger() -> logging.Logger:
    """The logger named :data:`TASK_LOGGER`, a :class:`TaskLogger` (one per process)."""
    manager = logging.Logger.manager
    existing = manager.loggerDict.get(TASK_LOGGER)
    if isinstance(existing, logging.Logger):
        return existing
    previous = manager.loggerClass
    manager.setLoggerClass(TaskLogger)
    try:
        return logging.getLogger(TASK_LOGGER)
    finally:
        manager.loggerClass = previous


def _may_begin_a_secret(text: str, secrets: list[str]) -> bool:
    """Whether ``text`` ends with the first characters of one of ``secrets`` (not all of
    them: a whole one is masked as it is)."""
    for secret in secrets:
        first = secret[0]
        tail = text[-(len(secret) - 1) :]
        start = tail.find(first)
        while start != -1:
            if secret.startswith(tail[start:]):
                return True
            start = tail.find(first, start + 1)
    return False


class LogWriter(io.TextIOBase):
    """A stdout/stderr replacement that sends each line written, at ``level``, through
    the task handler of ``logger`` (a line without its newline waits for it, or for
    :meth:`flush`). Each thread's lines are its own: threads printing at once never mix
    their lines (``print`` writes a line and its newline in two calls) — unless
    ``shared``, for a writer whose callers take turns (the capture of descriptors 1 and 2,
    fed from its reading thread and from whoever ends the task)."""

    def __init__(self, logger: logging.Logger, level: int, *, shared: bool = False) -> None:
        self.logger = logger
        self.level = level
        self._local = threading.local()  # .parts: this thread's line so far
        self._every: list[list[str]] = []  # every thread's, for flush()
        self._lock = threading.Lock()
        self._shared: list[str] | None = None
        if shared:
            self._shared = []
            self._every.append(self._shared)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        try:
            parts: list[str] = self._shared if self._shared is not None else self._local.parts
        except AttributeError:
            parts = self._local.parts = []
            with self._lock:
                self._every.append(parts)
        if "\n" not in text:
            if text:
                parts.append(text)
            return len(text)
        if text == "\n" and len(parts) == 1:  # print(line): the line, then its end
            self._send([parts.pop()])
            return 1
        if parts:
            parts.append(text)
            whole = "".join(parts)
            parts.clear()
        else:
            whole = text
        if whole[-1] == "\n":
            lines = whole[:-1].split("\n")
        else:
            done, _, rest = whole.rpartition("\n")
            parts.append(rest)
            lines = done.split("\n")
        self._send(lines)
        return len(text)

    def flush(self) -> None:
        """Send every thread's unfinished line — but one that ends with the beginning of
        a credential value (``print(pw[:3], end="", flush=True)``): it waits for the rest
        of its line, so that the value is masked whole (SPEC 11)."""
        secrets = self._secrets()
        with self._lock:
            lines = []
            for parts in self._every:
                if parts:
                    line = "".join(parts)
                    parts.clear()
                    if secrets and _may_begin_a_secret(line, secrets):
                        parts.append(line)
                    else:
                        lines.append(line)
        if lines:
            self._send(lines)

    def end(self) -> None:
        """Send every thread's unfinished line, whatever it ends with: the task is over."""
        with self._lock:
            lines = []
            for parts in self._every:
                if parts:
                    lines.append("".join(parts))
                    parts.clear()
        if lines:
            self._send(lines)

    def _secrets(self) -> list[str]:
        for handler in self.logger.handlers:
            if type(handler) is TaskHandler:
                return handler.masker.secrets
        return []

    def _send(self, lines: list[str]) -> None:
        logger = self.logger
        if not logger.isEnabledFor(self.level):
            return
        for handler in logger.handlers:
            if type(handler) is TaskHandler:
                handler.send(self.level, time.time(), lines)
                return
        for line in lines:  # a logger of another kind: a record a line
            logger.log(self.level, line)
