"""The fingerprint of a task (SPEC 13): everything its result depends on, as plain data.

- its process's **code**: the content of the module that defines it, and the version of
  the distribution that module comes from;
- its **params** (each key's value, hashed: credentials are never stored);
- its **env**: the env's name and settings; a hash of its **credentials** (never the
  values);
- the **content hashes of the variables it read** — declared inputs and what it read
  through ``pipe.vars`` when it ran (a variable it looked for and did not find counts as
  read, absent), whether they existed where it tested it (``name in pipe.vars``), and the
  names it listed (``pipe.vars.keys()``).

Reuse works as *verifying traces* (Mokhov, Mitchell, Peyton Jones, "Build systems à la
carte"): a task that succeeded recorded its fingerprint with what it read; it is reused
when everything it depends on but its reads is the same now, and every variable it read
still has the content it had then. Reads that were not declared count as much as
declared ones: what a process reads is known from what it did, not only from what it said.

Everything here is pure: the data comes from the plan, the store's hashes and the history.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import xxhash

ABSENT = "-"
"""The hash noted for a variable a task looked for that did not exist."""


def digest(value: Any) -> str:
    """A stable hash of plain data (JSON-able: dicts by sorted key)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    return xxhash.xxh3_128_hexdigest(text.encode())


@dataclass(frozen=True)
class Code:
    """A process's code (:func:`normandy_core.code.code_of`): its module, the hash of the
    module's source, the distribution (``name==version``) it comes from where it comes
    from one, and what it imports: project module -> the hash of its source, library ->
    its version, ``python`` -> Python's."""

    module: str
    source: str
    distribution: str = ""
    imports: tuple[tuple[str, str], ...] = ()

    def changes(self, now: Code) -> list[str]:
        """What changed from this code to ``now``: modules, libraries, ``python``."""
        changed = []
        if (self.module, self.source, self.distribution) != (
            now.module,
            now.source,
            now.distribution,
        ):
            changed.append(now.module)
        then, later = dict(self.imports), dict(now.imports)
        changed.extend(sorted(k for k in then.keys() | later.keys() if then.get(k) != later.get(k)))
        return changed


@dataclass(frozen=True)
class Fingerprint:
    """What a task's result depends on (see the module's docstring)."""

    code: Code
    params: Mapping[str, str]
    """Param -> the hash of its value."""
    env: str
    credentials: str
    reads: Mapping[str, str] = field(default_factory=dict)
    """Variable -> its content hash when read (:data:`ABSENT`: it did not exist)."""
    checked: Mapping[str, bool] = field(default_factory=dict)
    listed: str = ""
    """The hash of the variables' names, where the task listed them."""

    @property
    def key(self) -> str:
        """The fingerprint as one hash: equal keys, equal fingerprints."""
        return digest(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": [
                self.code.module,
                self.code.source,
                self.code.distribution,
                dict(self.code.imports),
            ],
            "params": dict(self.params),
            "env": self.env,
            "credentials": self.credentials,
            "reads": dict(self.reads),
            "checked": dict(self.checked),
            "listed": self.listed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fingerprint:
        module, source, distribution, *imports = data["code"]
        return cls(
            Code(module, source, distribution, tuple(sorted((imports or [{}])[0].items()))),
            dict(data["params"]),
            data["env"],
            data["credentials"],
            dict(data.get("reads") or {}),
            dict(data.get("checked") or {}),
            data.get("listed") or "",
        )

    def with_reads(
        self,
        reads: Mapping[str, str],
        checked: Mapping[str, bool] | None = None,
        listed: str = "",
    ) -> Fingerprint:
        return Fingerprint(
            self.code,
            self.params,
            self.env,
            self.credentials,
            dict(reads),
            dict(checked or {}),
            listed,
        )


def params_hashes(params: Mapping[str, Any]) -> dict[str, str]:
    """Each param's value, hashed (the values themselves may hold credentials)."""
    return {str(key): digest(value) for key, value in params.items()}


def env_hash(env: str, settings: Mapping[str, Any]) -> str:
    return digest([env, dict(settings)])


def credentials_hash(credentials: Mapping[str, Any]) -> str:
    return digest(dict(credentials))


def names_hash(names: list[str]) -> str:
    return digest(sorted(names))


Current = Callable[[str], "str | None"]
"""A variable's content hash in the run now (``None``: it does not exist)."""


def verify(
    recorded: Fingerprint,
    now: Fingerprint,
    current: Current,
    names: Callable[[], list[str]],
    shown: tuple[Mapping[str, Any], Mapping[str, Any]] = ({}, {}),
) -> list[str]:
    """Why a task that recorded ``recorded`` when it succeeded cannot be reused now
    (``now``: the same task's fingerprint without its reads, which are the recorded
    ones looked up again), in the words of ``--explain``; an empty list: it can.

    ``current`` gives each variable's content hash now, ``names`` the variables there;
    ``shown``, the params then and now as they may be shown (credentials masked)."""
    reasons: list[str] = []
    reasons.extend(f"code changed ({what})" for what in recorded.code.changes(now.code))
    changed = sorted(
        key
        for key in recorded.params.keys() | now.params.keys()
        if recorded.params.get(key) != now.params.get(key)
    )
    if changed:
        then, later = shown
        parts = [f"{key}: {_shown(then, key)} → {_shown(later, key)}" for key in changed]
        reasons.append(f"params changed ({'; '.join(parts)})")
    if recorded.env != now.env:
        reasons.append("env changed")
    if recorded.credentials != now.credentials:
        reasons.append("env changed (credentials)")
    for name, was in sorted(recorded.reads.items()):
        if (current(name) or ABSENT) != was:
            reasons.append(f"input changed ({name})")
    for name, existed in sorted(recorded.checked.items()):
        if (current(name) is not None) != existed:
            reasons.append(f"input changed ({name})")
    if recorded.listed and names_hash(names()) != recorded.listed:
        reasons.append("input changed (the list of variables)")
    return list(dict.fromkeys(reasons))


def _shown(params: Mapping[str, Any], key: str) -> str:
    if key not in params:
        return "(none)"
    return json.dumps(params[key], sort_keys=True, default=str)
