"""What comes back to the orchestrator while it waits: attempts that ended (their futures,
from the executor's threads) and attempts that a worker started (notices, from the log
thread), in one queue. The orchestrator sleeps on it and wakes once per batch of news,
at a cost that does not grow with the number of tasks waiting (unlike
``concurrent.futures.wait``, which visits every pending future at each call)."""

from __future__ import annotations

import contextlib
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from normandy_core._interrupt import RunInterrupted

StartNotice = tuple[str, int, int, float]
"""``key, attempt, pid, when``: a worker started this attempt at that time."""


@dataclass
class News:
    started: list[StartNotice] = field(default_factory=list)
    ended: set[Future[Any]] = field(default_factory=set)


class Inbox:
    """While the orchestrator is ``waiting``, the log thread gives it a moment
    (``GRACE``) to announce a start before it files the attempt's own lines, so that on the
    console a task's start comes before what it logs. When the orchestrator is busy (or
    runs the tasks itself, ``serial``), the log thread does not wait."""

    GRACE = 0.05

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[bool | None, Any]] = queue.SimpleQueue()
        self._announced = threading.Event()
        self.waiting = False
        self.interrupted = False

    def interrupt(self) -> None:
        """The run is stopped (a signal's handler calls this: ``SimpleQueue.put`` is
        reentrant): the wait going on, and every later one, raises
        :class:`~normandy_core._interrupt.RunInterrupted`."""
        self.interrupted = True
        self._queue.put((None, None))

    def ended(self, future: Future[Any]) -> None:
        """A future's done callback (in whatever thread ends it)."""
        self._queue.put((True, future))

    def started(self, key: str, attempt: int, pid: int, when: float) -> None:
        """In the log thread."""
        self._announced.clear()
        self._queue.put((False, (key, attempt, pid, when)))
        if self.waiting:
            self._announced.wait(self.GRACE)

    def wait(self, timeout: float | None) -> News:
        """Block until news arrives (or ``timeout`` seconds pass), then take all there is;
        call :meth:`announced` once the starts are told. Raises
        :class:`~normandy_core._interrupt.RunInterrupted` once :meth:`interrupt` was
        called."""
        news = News()
        if self.interrupted:
            raise RunInterrupted
        self.waiting = True
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return news
        finally:
            self.waiting = False
        with contextlib.suppress(queue.Empty):
            while True:
                ended, what = item
                if ended:
                    news.ended.add(what)
                elif ended is not None:
                    news.started.append(what)
                item = self._queue.get_nowait()
        if self.interrupted:
            raise RunInterrupted
        return news

    def announced(self) -> None:
        self._announced.set()
