"""What a notification tells: the run as JSON (the webhook's body, the command's standard
input) and as an email. Every text is masked with the run's credentials before it leaves:
the message is built, turned to text, then masked whole."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

EVENT_OF_STATUS = {"failed": "failure", "succeeded": "success", "interrupted": "interrupted"}
"""How a run's end is named in ``on:``."""


def failed_task(key: str, status: str, attempts: int, error: Any) -> dict[str, Any]:
    """A task that failed, with its error (``error``: a ``TaskError`` or ``None``)."""
    return {
        "key": key,
        "status": status,
        "attempts": attempts,
        "error": None
        if error is None
        else {"kind": error.kind, "type": error.type, "message": error.message},
    }


def run_message(
    event: str,
    run: Any,
    status: str,
    failed: Iterable[dict[str, Any]],
    *,
    ended: float | None = None,
    counts: dict[str, int] | None = None,
    reason: str | None = None,
    logs: str = "",
) -> dict[str, Any]:
    """The JSON a notification sends. ``run`` is the hooks' ``RunInfo``; ``status`` the
    run's (``running`` for a long run)."""
    now = time.time() if ended is None else ended
    failed = list(failed)
    duration = now - run.started
    what = {
        "failure": f"failed ({len(failed)} task{'s' * (len(failed) != 1)} failed)",
        "success": "succeeded",
        "interrupted": "was interrupted",
        "long": f"is still running after {_duration(duration)}",
    }[event]
    return {
        "event": event,
        "project": run.project,
        "run_id": run.id,
        "status": status,
        "env": run.env,
        "host": socket.gethostname(),
        "started": _iso(run.started),
        "ended": _iso(ended) if ended is not None else None,
        "duration": round(duration, 3),
        "counts": counts or {},
        "failed_tasks": failed,
        "reason": reason,
        "logs": logs,
        "text": f"normandy: run {run.id} of {run.project} {what}",
    }


def as_json(message: dict[str, Any], mask: Callable[[str], str]) -> str:
    return mask(json.dumps(message, indent=2, default=str))


def as_email(
    message: dict[str, Any], sender: str, to: Iterable[str], mask: Callable[[str], str]
) -> EmailMessage:
    """The message as an email: the summary as subject, the failed tasks and their errors
    in the body, the JSON at its end."""
    email = EmailMessage()
    email["Subject"] = mask(f"[normandy] {message['text'][len('normandy: '):]}")
    email["From"] = sender
    email["To"] = ", ".join(to)
    lines = [
        message["text"],
        "",
        f"project   {message['project']}",
        f"run       {message['run_id']} ({message['status']})",
        f"env       {message['env']}",
        f"host      {message['host']}",
        f"started   {message['started']}",
        f"duration  {_duration(message['duration'])}",
    ]
    if message.get("logs"):
        lines.append(f"logs      {message['logs']}")
    if message.get("reason"):
        lines += ["", f"The run ended early: {message['reason']}"]
    for task in message["failed_tasks"]:
        error = task["error"] or {}
        lines += ["", f"{task['key']}: {task['status']} after {task['attempts']} attempt(s)"]
        if error:
            lines.append(f"  {error['kind']}: {error['type']}: {error['message']}")
    lines += ["", "-- ", "As JSON:", json.dumps(message, indent=2, default=str)]
    email.set_content(mask("\n".join(lines)) + "\n")
    return email


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"
