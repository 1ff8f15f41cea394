"""``confs.notify`` as :class:`Notification` s. Normandy's configuration checks have
already checked its shape (``normandy validate``): this only reads it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_TIMEOUT = 10.0
"""Seconds a notification may take, retries included."""
DEFAULT_RETRIES = 2


@dataclass(frozen=True)
class Email:
    to: tuple[str, ...]
    sender: str
    host: str
    port: int
    credentials: str | None
    """The entry of the env's credentials holding ``user`` and ``password``."""


@dataclass(frozen=True)
class Notification:
    number: int
    """From 1, in the order of ``confs.notify``."""
    on: frozenset[str]
    after: float | None
    webhook: str | None = None
    email: Email | None = None
    command: tuple[str, ...] | None = None
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES

    @property
    def target(self) -> str:
        """The target, in words that never show a secret: a webhook's URL often holds a
        token in its path, so only its scheme and host are shown."""
        if self.webhook is not None:
            url = urlsplit(self.webhook)
            return f"webhook {url.scheme}://{url.netloc.rpartition('@')[2]}/…"
        if self.email is not None:
            return f"email to {', '.join(self.email.to)} through {self.email.host}"
        assert self.command is not None
        return f"command {self.command[0]}"


def read_settings(notify: Any, host: str) -> list[Notification]:
    """The notifications of ``confs.notify`` (``host``: this machine, for the default
    sender of emails)."""
    out = []
    for i, item in enumerate(notify if isinstance(notify, Sequence) else ()):
        if not isinstance(item, Mapping):
            continue
        on = item.get("on")
        events = frozenset([on] if isinstance(on, str) else on or ())
        email = item.get("email")
        command = item.get("command")
        out.append(
            Notification(
                number=i + 1,
                on=events,
                after=float(item["after"]) if item.get("after") is not None else None,
                webhook=item.get("webhook"),
                email=_email(email, host) if isinstance(email, Mapping) else None,
                command=tuple(str(a) for a in command) if command else None,
                timeout=float(item.get("timeout") or DEFAULT_TIMEOUT),
                retries=int(item.get("retries", DEFAULT_RETRIES)),
            )
        )
    return out


def _email(email: Mapping[str, Any], host: str) -> Email:
    to = email.get("to")
    server, _, port = str(email.get("smtp", "localhost")).rpartition(":")
    if not server or "]" in port:  # no port given (or an IPv6 address without one)
        server, port = str(email.get("smtp", "localhost")), ""
    return Email(
        to=(to,) if isinstance(to, str) else tuple(to or ()),
        sender=str(email.get("from") or f"normandy@{host}"),
        host=server.strip("[]"),
        port=int(port) if port else 25,
        credentials=email.get("credentials"),
    )
