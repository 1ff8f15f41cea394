"""Where a run's log lines go (SPEC 8, 11): the listener thread that takes them off the
run's queue, and the router that files them in ``run.log``, ``flow-<flow>.log`` and
``process-<task>.log`` and shows them on the console.

Lines are filed in batches: the listener takes everything the queue holds at once; the
router shows it on the console in one write, and writes each file's share in one go once
the queue stays empty a moment (:data:`Listener.LINGER`) or every :data:`Router.HOLD`
characters, not line by line. A quiet run sees each line at once; a task printing
megabytes costs a few system calls per batch, not per line.

Nothing stops the listener. A log file that cannot be written (a full disk, its folder
gone, a name the file system refuses) is reported once, on the console and in
:attr:`Router.problems`, and left out from then on; a record that cannot be handled is
reported the same way. Every writer of the queue depends on its reader: a listener that
died would leave them blocked on a full pipe, the run hung.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from normandy_core.errors import display_path
from normandy_core.store import file_part
from normandy_core.units import TimeOfDay

LINES = "normandy.lines"
"""The tag of a batch of a task's lines on the log queue (see :func:`lines_message`)."""
LISTENER_THREAD = "normandy-logs"
"""The name of the thread filing a run's logs."""

_FORMAT = "%(asctime)s %(levelname)-7s %(where)s | %(message)s"
_DATE = "%H:%M:%S"
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


class Console(Protocol):
    """Where console lines go: a text stream, or a progress display that prints them."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


StartedCallback = Callable[[str, int, int, float], None]
"""Called (in the log thread) with ``key, attempt, pid, when`` as a worker starts an attempt."""


def lines_message(
    where: tuple[str, str, str, str],
    levelno: int,
    levelname: str,
    created: float,
    messages: list[str],
) -> tuple[Any, ...]:
    """What a task puts on the log queue: ``messages`` (already masked), each filed as one
    record of the task ``where`` (flow, step, task, key) at ``levelno`` with the time
    ``created``. A plain tuple, made for every line a task prints: cheaper than any
    object (between processes it goes as text, see ``PacketQueue.put_text``)."""
    return (LINES, *where, levelno, levelname, created, messages)


RECORD = "normandy.record"


def record_item(
    flow: str | None,
    key: str | None,
    levelno: int,
    message: str,
    event: bool,
    own_file: bool = True,
) -> tuple[Any, ...]:
    """A record of the orchestrator's own (an event of the run, a problem), as a plain
    tuple it puts on the queue of its own process (``PacketQueue.put_local``): no
    :class:`logging.LogRecord` is made, pickled or read back. ``own_file=False``: a
    record of the task ``key`` filed in run.log and its flow's file only, not in a file
    of its own (a reused task, which did not run: its log is its origin run's)."""
    level = logging.getLevelName(levelno)
    return (RECORD, flow, key, levelno, level, time.time(), message, event, own_file)


def is_lines(item: object) -> bool:
    return type(item) is tuple and len(item) == 9 and item[0] == LINES


def lines_records(item: tuple[Any, ...]) -> list[logging.LogRecord]:
    """A batch of lines as log records (for whoever needs records: the dask executor
    sends records between machines, tests read them)."""
    _, flow, step, task, key, levelno, levelname, created, messages = item
    return [
        logging.makeLogRecord(
            {
                "name": "normandy.task",
                "levelno": levelno,
                "levelname": levelname,
                "msg": message,
                "created": created,
                "msecs": (created - int(created)) * 1000,
                "flow": flow,
                "step": step,
                "task": task,
                "key": key,
            }
        )
        for message in messages
    ]


class Router:
    """Files each record or batch of lines in run.log, its flow's and its task's files,
    and shows it on the console (event lines only with ``console_events``); passes start
    notices to ``on_started``. Used by one thread, the listener."""

    MAX_OPEN = 64
    """Log files kept open at once: a run of thousands of tasks has a file per task, more
    than a process may open; the least recently written is closed (and reopened in append
    mode if its task writes again)."""

    HOLD = 1 << 20
    """Text held at most before it is written, in characters."""

    def __init__(
        self,
        log_dir: Path,
        level: int,
        console: Console | None,
        console_events: bool,
        on_started: StartedCallback | None,
    ) -> None:
        self.log_dir = log_dir
        self._dir = str(log_dir)
        self.run_level = level
        self.files: OrderedDict[str, int] = OrderedDict()
        """The open log files, least recently written first."""
        self.broken: dict[str, str] = {}
        """Log files that could not be written -> why; left out from then on."""
        self.problems: list[str] = []
        """What could not be logged, in words, in the order it happened."""
        self.console = console
        self.console_events = console_events
        self.on_started = on_started
        self.formatter = logging.Formatter(_FORMAT, datefmt=_DATE)
        self._held: dict[str, list[str]] = {}  # file name -> its text not written yet
        self._console: list[str] = []  # the console's
        self._size = 0
        self._targets: dict[tuple[str | None, str | None], tuple[list[str], ...]] = {}
        """(flow, key) -> the lists of held text of its files."""
        self._time = TimeOfDay()

    # -- what arrives ------------------------------------------------------------------------

    def handle(self, item: Any) -> None:
        if is_lines(item):
            self._lines(item)
        elif type(item) is tuple and len(item) == 9 and item[0] == RECORD:
            self._own(item)
        elif isinstance(item, logging.LogRecord):
            self._record(item)

    def handle_all(self, items: list[Any]) -> None:
        """:meth:`handle` each item, in order; consecutive lines of one task at one level
        in one second are filed together (a chatty task's lines arrive so). An item that
        cannot be filed is reported and skipped."""
        group: tuple[Any, ...] | None = None
        second = -1
        for item in items:
            if type(item) is tuple and len(item) == 9 and item[0] == LINES:  # is_lines()
                if (
                    group is not None
                    and item[4] == group[4]
                    and item[6] == group[6]
                    and int(item[7]) == second
                ):
                    group[8].extend(item[8])
                    continue
                if group is not None:
                    self._safely(self._lines, group)
                group, second = item, int(item[7])
                continue
            if group is not None:
                self._safely(self._lines, group)
                group = None
            self._safely(self.handle, item)
        if group is not None:
            self._safely(self._lines, group)

    def _safely(self, action: Callable[[Any], None], item: Any) -> None:
        try:
            action(item)
        except Exception as exc:  # noqa: BLE001 - the next item may do
            self.problem(f"log lines were lost: {type(exc).__name__}: {exc}")

    def _lines(self, item: tuple[Any, ...]) -> None:
        _, flow, _, _, key, levelno, levelname, created, messages = item
        if not messages:
            return
        prefix = f"{self._time(created)} {levelname:<7} {key or flow or 'normandy'} | "
        text = prefix + f"\n{prefix}".join(messages) + "\n"
        self._file(text, flow, key, levelno, False)

    def _own(self, item: tuple[Any, ...]) -> None:
        _, flow, key, levelno, levelname, created, message, event, own_file = item
        text = f"{self._time(created)} {levelname:<7} {key or flow or 'normandy'} | {message}\n"
        self._file(text, flow, key if own_file else None, levelno, event)

    def _record(self, record: logging.LogRecord) -> None:
        started = getattr(record, "started", None)
        if started is not None:  # a worker's start notice: it bypassed every logger's level
            if self.on_started is not None:
                self.on_started(*started)
            if record.levelno < self.run_level:
                return
        key = getattr(record, "key", None)
        flow = getattr(record, "flow", None)
        where = key or (flow or "normandy")
        if record.exc_info or record.exc_text or record.stack_info:
            record.where = where
            text = self.formatter.format(record) + "\n"
        else:  # what the formatter would write, with the time of day made once a second
            stamp = self._time(record.created)
            text = f"{stamp} {record.levelname:<7} {where} | {record.getMessage()}\n"
        self._file(text, flow, key, record.levelno, getattr(record, "event", False))

    def _file(
        self, text: str, flow: str | None, key: str | None, levelno: int, event: bool
    ) -> None:
        targets = self._targets.get((flow, key))
        if targets is None:
            names = ["run.log"]
            if flow:
                names.append(f"flow-{file_part(flow)}.log")
            if key:
                names.append(f"process-{file_part(key)}.log")
            targets = tuple(self._held.setdefault(name, []) for name in names)
            self._targets[(flow, key)] = targets
        for held in targets:
            held.append(text)
        self._size += len(text)
        if (
            self.console is not None
            and levelno >= self.run_level
            and (self.console_events or not event)
        ):
            self._console.append(text)
        if self._size >= self.HOLD:
            self.flush()

    # -- the files -----------------------------------------------------------------------------

    def _write(self, name: str, text: str) -> None:
        if name in self.broken:
            return
        try:
            fd = self.files.get(name)
            if fd is None:
                fd = self._open(name)
            else:
                self.files.move_to_end(name)
            # backslashreplace: a lone surrogate in a process's text must not fail the file
            data = memoryview(text.encode("utf-8", "backslashreplace"))
            while data:  # a regular file takes it all, but for a full disk (an error)
                data = data[os.write(fd, data) :]
        except Exception as exc:  # a full disk, a folder gone, a name refused…
            self._broken(name, exc)

    def _open(self, name: str) -> int:
        """The file's descriptor, opened to append (unbuffered: each write is one system
        call, and no text layer is made for a file most tasks write once)."""
        if len(self.files) >= self.MAX_OPEN:
            oldest, fd = self.files.popitem(last=False)
            try:
                os.close(fd)
            except Exception as exc:  # noqa: BLE001 - written already: nothing is lost
                self._broken(oldest, exc)
        fd = os.open(os.path.join(self._dir, name), _APPEND, 0o666)
        self.files[name] = fd
        return fd

    def _broken(self, name: str, exc: BaseException) -> None:
        fd = self.files.pop(name, None)
        if fd is not None:
            with contextlib.suppress(Exception):  # the same failure again: being reported
                os.close(fd)
        if name in self.broken:
            return
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        self.broken[name] = reason
        self.problem(
            f"cannot write {_shown(self.log_dir / name)}: {reason}; its lines are left out "
            "(the console and the other log files still get them)"
        )

    # -- the console and flushing --------------------------------------------------------------

    def problem(self, text: str) -> None:
        """Record what could not be logged and say it on the console (on stderr without
        one), at once."""
        if text in self.problems:
            return
        self.problems.append(text)
        line = f"normandy: warning: {text}\n"
        try:
            if self.console is not None:
                self.console.write(line)
                self.console.flush()
            else:
                sys.stderr.write(line)
                sys.stderr.flush()
        except Exception:  # noqa: BLE001 - nowhere left to say it: it is recorded
            pass

    def flush_console(self) -> None:
        """Write the console's lines held (the files keep theirs until :meth:`flush`)."""
        if not self._console or self.console is None:
            self._console.clear()
            return
        text = "".join(self._console)
        self._console.clear()
        try:
            self.console.write(text)
            self.console.flush()
        except Exception as exc:  # stderr closed, a display that failed…
            self.console = None
            self.problem(f"cannot write to the console: {type(exc).__name__}: {exc}")

    def flush(self) -> None:
        """Write what is held: the console's lines, then each file's."""
        self.flush_console()
        for name, held in self._held.items():
            if held:
                text = "".join(held)
                held.clear()  # the list stays: the targets of its tasks hold it
                self._write(name, text)
        self._size = 0

    def close(self) -> None:
        self.flush()
        for name, fd in list(self.files.items()):
            try:
                os.close(fd)
            except Exception as exc:
                self._broken(name, exc)
        self.files.clear()


def _shown(path: Path) -> str:
    """The path as people read it (``logs/<run>/process-….log`` from the project)."""
    try:
        return display_path(path)
    except OSError:  # the current folder is gone
        return str(path)


class Listener:
    """The thread that takes everything off the run's log queue and hands it to the
    router. ``None`` on the queue stops it (after what was put before).

    While lines keep coming, it reads the queue every :data:`LINGER` seconds instead of
    as soon as a line is there: waking up for each line (and waking the writer's system
    call) would cost more than filing it. What it holds is written when the queue stays
    empty that long, and at least every :data:`MAX_DELAY` seconds.
    """

    LINGER = 0.002
    MAX_DELAY = 0.1

    def __init__(self, log_queue: Any, router: Router) -> None:
        self.queue = log_queue
        self.router = router
        self.thread = threading.Thread(target=self._run, name=LISTENER_THREAD, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join()

    def _run(self) -> None:
        flushed = time.monotonic()
        while True:
            try:
                items = self._take()
            except EOFError:  # every writer closed the queue: nothing more can come
                self._safely(self.router.flush)
                return
            except Exception as exc:  # noqa: BLE001 - never a dead listener
                self.router.problem(f"the log queue failed: {type(exc).__name__}: {exc}")
                time.sleep(0.1)
                continue
            taken = len(items)
            stop = None in items
            if stop:  # what a dying worker put after the end is dropped
                items = items[: items.index(None)]
            self._safely(self.router.handle_all, items)
            self._safely(self.router.flush_console)  # people see lines as they come
            self._done(taken)
            if not stop and not self._more():
                time.sleep(self.LINGER)  # lines coming one by one: let them gather
            if stop or not self._more() or time.monotonic() - flushed >= self.MAX_DELAY:
                self._safely(self.router.flush)
                flushed = time.monotonic()
            if stop:
                return

    def _safely(self, action: Callable[..., None], *args: Any) -> None:
        try:
            action(*args)
        except Exception as exc:  # what the router could not handle: the next may do
            self.router.problem(f"log lines were lost: {type(exc).__name__}: {exc}")

    def _take(self) -> list[Any]:
        """Everything the queue holds, waiting for the first item."""
        get_many = getattr(self.queue, "get_many", None)
        if get_many is not None:
            return get_many()  # type: ignore[no-any-return]
        items = [self.queue.get()]
        try:
            while len(items) < 10_000:
                items.append(self.queue.get_nowait())
        except queue.Empty:
            pass
        return items

    def _more(self) -> bool:
        """Whether more is waiting (then the flush waits for it)."""
        pending = getattr(self.queue, "pending", None)
        if pending is not None:
            return bool(pending())
        return not self.queue.empty()

    def _done(self, count: int) -> None:
        task_done = getattr(self.queue, "task_done", None)
        if task_done is not None:  # queue.Queue: join() waits until everything is handled
            for _ in range(count):
                task_done()
