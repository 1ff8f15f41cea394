"""``confs.notify`` (SPEC 18): the notifications of a project's runs. The schema checks
each item's shape; this module checks what the schema cannot: one target per item, ``on:
long`` with its ``after``, the email's credentials in the env, and that the plugin that
delivers them (normandy-notify) is installed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from normandy_core.config._nodes import Location, locate
from normandy_core.config._schema import NOTIFY_TARGETS
from normandy_core.config._yaml import YamlDocument
from normandy_core.errors import Problem

PLUGIN = "normandy-notify"
"""The distribution that delivers ``confs.notify``."""
INSTALL = (
    "install it beside normandy: pip install normandy-notify (from Normandy's source tree: "
    "pip install ./plugins/normandy-notify)"
)


def events(item: Mapping[str, Any]) -> list[str]:
    """The ``on:`` of a notification, as a list."""
    on = item.get("on")
    return [on] if isinstance(on, str) else [e for e in on or () if isinstance(e, str)]


def read_notify(doc: YamlDocument, notify: Any) -> tuple[dict[str, Location], list[Problem]]:
    """The positions of ``confs.notify``'s keys that later checks speak of, and the
    problems of its items that the schema does not see."""
    locations: dict[str, Location] = {}
    problems: list[Problem] = []
    if not isinstance(notify, list):
        return locations, problems
    locations["confs.notify"] = locate(doc, ["confs", "notify"], at_key=True)
    for i, item in enumerate(notify):
        if not isinstance(item, Mapping):
            continue
        keys: list[Any] = ["confs", "notify", i]
        targets = [t for t in NOTIFY_TARGETS if t in item]
        if not targets:
            problems.append(
                doc.problem(
                    keys,
                    "a notification needs a target: webhook: URL, email: {to: …, smtp: HOST} "
                    "or command: [PROGRAM, ARG…]",
                )
            )
        for extra in targets[1:]:
            problems.append(
                doc.problem(
                    [*keys, extra],
                    f"one target per notification: this one has {targets[0]} and {extra}; "
                    "write one notification for each",
                    at_key=True,
                )
            )
        on = events(item)
        if "long" in on and "after" not in item:
            problems.append(
                doc.problem(
                    [*keys, "on"],
                    "on: long needs after: SECONDS, how long a run may go on before it is told",
                )
            )
        if "after" in item and "long" not in on:
            problems.append(
                doc.problem(
                    [*keys, "after"],
                    "after: is when to tell of a long run: add long to on:, or remove after:",
                    at_key=True,
                )
            )
        email = item.get("email")
        if isinstance(email, Mapping) and isinstance(email.get("credentials"), str):
            path = f"confs.notify[{i}].email.credentials"
            locations[path] = locate(doc, [*keys, "email", "credentials"])
    return locations, problems


def check_plugin(notify: Any, where: Location, plugin_sources: Iterable[str]) -> list[Problem]:
    """A problem where notifications are configured and normandy-notify is not installed:
    they would never be delivered, and nobody would know."""
    if not notify:
        return []
    if any(_normalized(source) == PLUGIN for source in plugin_sources):
        return []
    return [
        where.problem(
            f"notifications are delivered by the plugin {PLUGIN}, which is not installed; "
            + INSTALL
        )
    ]


def check_credentials(
    notify: Any, env: str, credentials: Mapping[str, Any], where: Mapping[str, Location]
) -> list[Problem]:
    """Each email's ``credentials: KEY`` must name an entry of the env's credentials that
    holds ``user`` and ``password`` (values never quoted)."""
    problems = []
    for i, item in enumerate(notify if isinstance(notify, list) else ()):
        email = item.get("email") if isinstance(item, Mapping) else None
        key = email.get("credentials") if isinstance(email, Mapping) else None
        if not isinstance(key, str):
            continue
        entry = credentials.get(key)
        if isinstance(entry, Mapping) and {"user", "password"} <= set(entry):
            continue
        if key not in credentials:
            known = ", ".join(sorted(map(str, credentials))) or "none"
            what = f"the credentials of env {env} have no entry {key!r} (they have: {known})"
        else:
            what = f"the credentials' entry {key!r} of env {env} must hold user and password"
        location = where.get(f"confs.notify[{i}].email.credentials")
        if location is not None:
            problems.append(
                location.problem(
                    f"{what}; add {key}: {{user: …, password: …}} to the env's credentials file"
                )
            )
    return problems


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
