"""A run's logs (SPEC 8): the console, ``logs/<run_id>/run.log``, ``flow-<flow>.log`` and
``process-<flow>.<step>.<task>.log``, fed from one queue by a listener thread."""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import queue
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any

from normandy_core.store import file_part

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warnings": logging.WARNING,
    "error": logging.ERROR,
    "errors": logging.ERROR,
    "critical": logging.CRITICAL,
}

_FORMAT = "%(asctime)s %(levelname)-7s %(where)s | %(message)s"


def level_number(name: str) -> int:
    """``warnings`` -> ``logging.WARNING``; ``ValueError`` for an unknown name."""
    try:
        return LEVELS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r}; use one of: {', '.join(LEVELS)}") from None


class _Router(logging.Handler):
    """Writes each record to run.log, its flow's and its task's files, and the console."""

    MAX_OPEN = 64
    """Log files kept open at once: a run of thousands of tasks has a file per task, more
    than a process may open; the least recently written is closed (and reopened in append
    mode if its task writes again)."""

    def __init__(self, log_dir: Path, console: IO[str] | None, console_level: int) -> None:
        super().__init__(logging.DEBUG)
        self.log_dir = log_dir
        self.files: OrderedDict[str, IO[str]] = OrderedDict()
        self.console = console
        self.console_level = console_level
        self.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))

    def _file(self, name: str) -> IO[str]:
        handle = self.files.get(name)
        if handle is not None:
            self.files.move_to_end(name)
            return handle
        if len(self.files) >= self.MAX_OPEN:
            self.files.popitem(last=False)[1].close()
        handle = self.files[name] = open(self.log_dir / name, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        return handle

    def emit(self, record: logging.LogRecord) -> None:
        key = getattr(record, "key", None)
        flow = getattr(record, "flow", None)
        record.where = key or (flow or "normandy")
        text = self.format(record) + "\n"
        targets = ["run.log"]
        if flow:
            targets.append(f"flow-{file_part(flow)}.log")
        if key:
            targets.append(f"process-{file_part(key)}.log")
        for name in targets:
            handle = self._file(name)
            handle.write(text)
            handle.flush()
        if self.console is not None and record.levelno >= self.console_level:
            self.console.write(text)
            self.console.flush()

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()
        self.files.clear()
        super().close()


class QueueHandler(logging.handlers.QueueHandler):
    """Puts records with a blocking ``put``: works with ``multiprocessing.SimpleQueue``,
    whose writes go straight into the pipe, so that a worker's records are all in it
    before the worker returns its result (and the orchestrator's line about the task ends
    up after them)."""

    def enqueue(self, record: logging.LogRecord) -> None:
        self.queue.put(record)  # type: ignore[attr-defined]


class _Listener(logging.handlers.QueueListener):
    def dequeue(self, block: bool) -> logging.LogRecord:
        return self.queue.get()  # type: ignore[no-any-return]

    def enqueue_sentinel(self) -> None:
        self.queue.put(None)  # type: ignore[attr-defined]  # QueueListener's sentinel


class RunLogs:
    """The log files of one run and the queue every process's records go through."""

    def __init__(
        self,
        log_dir: Path,
        level: int,
        console: IO[str] | None,
        across_processes: bool,
        mp_context: Any = None,
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = log_dir
        self.level = level
        ctx = mp_context or multiprocessing
        self.queue: Any = ctx.SimpleQueue() if across_processes else queue.Queue()
        self.router = _Router(log_dir, console, level)
        self.listener = _Listener(self.queue, self.router)
        self.listener.start()
        self.logger = logging.getLogger(f"normandy.run.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(level)
        self.logger.addHandler(QueueHandler(self.queue))

    def log(
        self, level: int, message: str, *, flow: str | None = None, key: str | None = None
    ) -> None:
        """A record of the orchestrator's, filed with ``flow``/``key`` where given."""
        self.logger.log(level, message, extra={"flow": flow, "key": key})

    def close(self) -> None:
        self.listener.stop()
        self.router.close()
        self.logger.handlers.clear()
