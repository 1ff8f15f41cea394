"""A task's logging, in its worker: the ``log`` a process receives, and its printed
output, as records tagged with flow/step/task, masked, sent to the run's log queue."""

from __future__ import annotations

import io
import logging
import traceback
from typing import TYPE_CHECKING, Any

from normandy_core.logs import QueueHandler
from normandy_core.masking import Masker

if TYPE_CHECKING:
    from normandy_core.worker import TaskCall


class TaskFilter(logging.Filter):
    """Masks a task's records and tags them with its flow, step and task."""

    def __init__(self, call: TaskCall, masker: Masker) -> None:
        super().__init__()
        self.call = call
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.masker(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.masker("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        record.flow, record.step, record.task = self.call.flow, self.call.step, self.call.task
        record.key = self.call.key
        return True


def task_logger(call: TaskCall, queue: Any, masker: Masker) -> logging.Logger:
    logger = logging.getLogger(f"normandy.task.{call.key}")
    logger.setLevel(call.log_level)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    if queue is not None:
        handler = QueueHandler(queue)
        handler.addFilter(TaskFilter(call, masker))
        logger.addHandler(handler)
    return logger


class LogWriter(io.TextIOBase):
    """A stdout/stderr replacement that turns each printed line into a log record."""

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger = logger
        self.level = level
        self.pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            self.logger.log(self.level, line)
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.logger.log(self.level, self.pending)
            self.pending = ""
