"""When to tell, and how hard to try: a :class:`Notifier` follows one run.

- ``on: long``: a timer per notification, started with the run; when it fires, the run
  is told of while it still goes on (the delivery runs in the timer's thread).
- At the run's end, each notification whose ``on`` names how it ended is delivered, all
  at once, each in a thread of its own; the end waits for them, but never past each
  one's ``timeout`` (its deadline, retries included): a target that does not answer
  delays the run's end by its timeout at most, and never fails the run.
- A failed attempt is tried again, up to ``retries`` more times, after a pause that
  doubles (0.5 s, 1 s, 2 s…), while the deadline allows. A delivery that fails for good
  is logged in the run's log, as a warning; one that gets through, as a line of its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from normandy_notify._deliver import DeliveryError, deliver
from normandy_notify._message import (
    EVENT_OF_STATUS,
    as_email,
    as_json,
    failed_task,
    run_message,
)
from normandy_notify._settings import Notification

FIRST_PAUSE = 0.5
MARGIN = 0.03
"""Seconds before its deadline that a delivery gives up: time to log why, before the run's
end stops waiting for it."""
FAILURES = ("failed", "crashed", "timed out")


class Notifier:
    """The notifications of one run (``run``: the hooks' ``RunInfo``)."""

    def __init__(self, run: Any, notifications: Sequence[Notification]) -> None:
        self.run = run
        self.notifications = list(notifications)
        self.failed: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.ended = threading.Event()
        self.pending: list[tuple[threading.Thread, float]] = []  # a delivery, its deadline
        self.timers: list[threading.Timer] = []

    def start(self) -> None:
        for notification in self.notifications:
            if "long" in notification.on and notification.after is not None:
                timer = threading.Timer(notification.after, self._long, (notification,))
                timer.daemon = True
                timer.name = f"normandy-notify-long-{notification.number}"
                self.timers.append(timer)
                timer.start()
        # what a delivery imports, imported now, while the run goes on, not at its end
        warm = threading.Thread(target=_import_for, args=(self.notifications,), daemon=True)
        warm.start()

    def task_ended(self, outcome: Any) -> None:
        if outcome.status in FAILURES:
            task = failed_task(outcome.task.key, outcome.status, outcome.attempts, outcome.error)
            task["tolerated"] = bool(outcome.tolerated)
            with self.lock:
                self.failed.append(task)

    def end(self, summary: Any) -> None:
        """Tell of the run's end; return once every delivery ended, or its deadline
        passed."""
        self.ended.set()
        for timer in self.timers:
            timer.cancel()
        event = EVENT_OF_STATUS.get(summary.status)
        failed = [
            {**failed_task(o.task.key, o.status, o.attempts, o.error), "tolerated": o.tolerated}
            for o in summary.outcomes
            if o.status in FAILURES
        ]
        message = run_message(
            event or summary.status,
            self.run,
            summary.status,
            failed,
            ended=summary.ended,
            counts=dict(summary.counts),
            reason=summary.reason,
            logs=str(summary.log_dir),
        ) if event else None  # fmt: skip
        for notification in self.notifications:
            if message is not None and event in notification.on:
                self._start(notification, message)
        with self.lock:
            pending = list(self.pending)
        for thread, deadline in pending:
            thread.join(max(deadline - time.monotonic(), 0.0))

    def _long(self, notification: Notification) -> None:
        if self.ended.is_set():
            return
        deadline = _deadline(notification)
        with self.lock:
            failed = list(self.failed)
            self.pending.append((threading.current_thread(), deadline))
        message = run_message("long", self.run, "running", failed)
        self._deliver(notification, message, deadline)

    def _start(self, notification: Notification, message: dict[str, Any]) -> None:
        deadline = _deadline(notification)
        thread = threading.Thread(
            target=self._deliver,
            args=(notification, message, deadline),
            name=f"normandy-notify-{notification.number}",
            daemon=True,  # past its deadline, nothing waits for it
        )
        with self.lock:
            self.pending.append((thread, deadline))
        thread.start()

    def _deliver(self, notification: Notification, message: dict[str, Any], deadline: float):
        """Every attempt of one notification; never raises."""
        run = self.run
        deadline -= MARGIN
        what = f"notification {notification.number} ({notification.target}, {message['event']})"
        try:
            body = as_json(message, run.mask)
            sender = notification.email.sender if notification.email else ""
            to = notification.email.to if notification.email else ()

            def email() -> Any:
                return as_email(message, sender, to, run.mask)

            pause, attempts = FIRST_PAUSE, 0
            while True:
                attempts += 1
                try:
                    deliver(notification, body, email, run.credentials, run.root, deadline)
                except DeliveryError as exc:
                    left = deadline - time.monotonic()
                    if not exc.retry or attempts > notification.retries or left <= pause:
                        why = str(exc) if left > 0 or not exc.retry else f"{exc}; timed out"
                        self._log(
                            logging.WARNING,
                            f"{what} not delivered after {attempts} attempt(s): {why}",
                        )
                        return
                    time.sleep(pause)
                    pause *= 2
                    continue
                self._log(logging.INFO, f"{what} sent")
                return
        except Exception as exc:  # a bug here must not reach the run
            self._log(logging.ERROR, f"{what} failed: {type(exc).__name__}: {exc}")

    def _log(self, level: int, message: str) -> None:
        self.run.log(level, self.run.mask(message))


def _deadline(notification: Notification) -> float:
    return time.monotonic() + notification.timeout


def _import_for(notifications: Sequence[Notification]) -> None:
    try:
        if any(n.webhook for n in notifications):
            import urllib.request  # noqa: F401
        if any(n.email for n in notifications):
            import email.message  # noqa: F401
            import smtplib  # noqa: F401
            import ssl  # noqa: F401
        if any(n.command for n in notifications):
            import subprocess  # noqa: F401
    except Exception:  # imported again, and reported, where it is needed
        pass
