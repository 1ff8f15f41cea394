"""The hook implementations (registered through the entry point group
``normandy.plugins``): a :class:`~normandy_notify._notifier.Notifier` follows each run
whose ``confs.notify`` holds notifications."""

from __future__ import annotations

import socket
from typing import Any

from normandy_core import hookimpl
from normandy_notify._notifier import Notifier
from normandy_notify._settings import read_settings

_notifiers: dict[str, Notifier] = {}
"""The runs followed, by id (one process may run several, one after another)."""


@hookimpl
def normandy_before_run(run: Any) -> None:
    notifications = read_settings(run.confs.get("notify"), socket.gethostname())
    if notifications:
        notifier = _notifiers[run.id] = Notifier(run, notifications)
        notifier.start()


@hookimpl
def normandy_after_process(run: Any, outcome: Any) -> None:
    notifier = _notifiers.get(run.id)
    if notifier is not None:
        notifier.task_ended(outcome)


@hookimpl
def normandy_after_run(run: Any, summary: Any) -> None:
    notifier = _notifiers.pop(run.id, None)
    if notifier is not None:
        notifier.end(summary)
