"""Delivering one notification: a webhook (a JSON POST), an email (SMTP) or a command (the
JSON on its standard input). Each attempt is bounded by a deadline (a ``time.monotonic()``):
nothing here waits past it, and a command still running then is killed with its children.
A failed attempt raises :class:`DeliveryError` saying why, in words without secrets."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from normandy_notify._settings import Email, Notification

USER_AGENT = "normandy-notify/0.1"


class DeliveryError(Exception):
    """An attempt failed; ``retry`` says whether another may succeed."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


def deliver(
    notification: Notification,
    body: str,
    email: Callable[[], Any],
    credentials: Mapping[str, Any],
    cwd: Path,
    deadline: float,
) -> None:
    """One attempt; ``body`` is the (masked) JSON, ``email`` makes the (masked) email."""
    if notification.webhook is not None:
        post(notification.webhook, body, deadline)
    elif notification.email is not None:
        send(notification.email, email(), credentials, deadline)
    else:
        assert notification.command is not None
        command(notification.command, body, cwd, deadline)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeliveryError("no time left", retry=False)
    return left


def post(url: str, body: str, deadline: float) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=body.encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=_left(deadline)) as response:
            response.read(64 * 1024)
    except urllib.error.HTTPError as exc:
        # a client error other than "too many requests" or "timeout" will not get better
        retry = exc.code >= 500 or exc.code in (408, 429)
        raise DeliveryError(f"the server answered {exc.code} {exc.reason}", retry) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DeliveryError(f"{type(exc).__name__}: {reason}") from None


def send(email: Email, message: Any, credentials: Mapping[str, Any], deadline: float) -> None:
    import smtplib
    import ssl

    login = credentials.get(email.credentials) if email.credentials else None
    try:
        if email.port == 465:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                email.host, email.port, timeout=_left(deadline),
                context=ssl.create_default_context(),
            )  # fmt: skip
        else:
            smtp = smtplib.SMTP(email.host, email.port, timeout=_left(deadline))
        with smtp:
            smtp.ehlo()
            if email.port != 465 and smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if isinstance(login, Mapping):
                smtp.login(str(login["user"]), str(login["password"]))
            smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(
            f"the SMTP server refused the login of credentials {email.credentials!r} "
            f"({exc.smtp_code})",
            retry=False,
        ) from None
    except smtplib.SMTPResponseException as exc:
        retry = exc.smtp_code < 500
        raise DeliveryError(f"the SMTP server answered {exc.smtp_code}", retry) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None


def command(argv: tuple[str, ...], body: str, cwd: Path, deadline: float) -> None:
    """Run ``argv`` with ``body`` on its standard input; it must exit 0 before the
    deadline, else it is killed with everything it started (its own session)."""
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        raise DeliveryError(f"cannot start {argv[0]}: {exc.strerror or exc}", False) from None
    try:
        _, err = process.communicate(body.encode("utf-8"), timeout=_left(deadline))
    except (subprocess.TimeoutExpired, DeliveryError):
        _kill(process)
        raise DeliveryError(f"{argv[0]} did not end in time; it was killed", False) from None
    except BaseException:
        _kill(process)
        raise
    if process.returncode != 0:
        last = err.decode("utf-8", "replace").strip().splitlines()[-1:] if err else []
        said = f": {last[0][:300]}" if last else ""
        raise DeliveryError(f"{argv[0]} exited with status {process.returncode}{said}")


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        process.communicate(timeout=5)
