"""The fingerprint of a task (SPEC 13): everything its result depends on, as plain data.

- its process's **code** (:class:`Code`): the source of what the function reaches in its
  module, the distribution it comes from, what that code imports;
- its **wiring** (:class:`Wiring`): the resolved ``module:function``, its ``inputs`` and
  ``outputs`` mappings;
- its **env**: the keyed hash of the env's name and settings, and of its credentials;
- its **trace** (:class:`~normandy_core.trace.Trace`): what it did while it ran — the
  variables, params, environment variables, files and folders it read, the modules and
  libraries it imported, the programs it started.

Reuse works as *verifying traces* (Mokhov, Mitchell, Peyton Jones, "Build systems à la
carte"): a task that succeeded recorded its fingerprint with its trace; it is reused when
its code, wiring and env are the same now (``now``: the fingerprint without a trace, made
before running) and everything its trace names is still as it saw it (:func:`verify`).
Reads that were not declared count as much as declared ones; what cannot be verified
counts as changed.

Values that may be secret (params, environment variables, the env's settings and
credentials, files' contents) are hashed with a per-project key (:class:`Keyed`): a
short credential cannot be recovered from the history by trying every value.

Everything here is pure: the data comes from the plan, the store's hashes and the history.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import xxhash

from normandy_core.trace import ABSENT, LEGACY, Trace, World, describe, order

__all__ = ["ABSENT", "Code", "Fingerprint", "Keyed", "Wiring", "World", "digest", "verify"]

FORMAT = 2
"""The fingerprint's format in the history: 2 since traces and keyed hashes (1 had
unkeyed hashes of every param, and no trace)."""


def _text(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr).encode()


def digest(value: Any) -> str:
    """A stable hash of plain data that holds no secret (JSON-able: dicts by sorted key)."""
    return xxhash.xxh3_128_hexdigest(_text(value))


class Keyed:
    """A keyed cryptographic hash (BLAKE2b, 128 bits) of plain data, with the project's
    secret key (:func:`normandy_core.secret.project_key`): equal values, equal hashes,
    and no way back to the value without the key."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def __call__(self, value: Any) -> str:
        return hashlib.blake2b(_text(value), key=self.key, digest_size=16).hexdigest()

    def bytes(self, data: bytes) -> str:
        return hashlib.blake2b(data, key=self.key, digest_size=16).hexdigest()


@dataclass(frozen=True)
class Code:
    """A process's code (:func:`normandy_core.code.code_of`): its module, the hash of the
    part of the module's source its function reaches, the distribution (``name==version``)
    it comes from where it comes from one, and what that code imports: project module ->
    the hash of its source, library -> its version, ``python`` -> Python's."""

    module: str
    source: str
    distribution: str = ""
    imports: tuple[tuple[str, str], ...] = ()

    def changes(self, now: Code) -> list[str]:
        """What changed from this code to ``now``: modules, libraries, ``python``."""
        if self == now:  # most often: a reused step's tasks share their process's code
            return []
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
class Wiring:
    """How a task's entry wires its process: the resolved ``module:function`` it runs,
    its ``inputs`` (parameter -> variable, where not the parameter's own name) and its
    ``outputs`` (as written: their order matters)."""

    process: str
    inputs: tuple[tuple[str, str], ...] = ()
    outputs: str = ""

    def changes(self, now: Wiring) -> list[str]:
        changed = []
        if self.process != now.process:
            changed.append(f"process changed ({self.process} → {now.process})")
        if self.inputs != now.inputs:
            then, later = dict(self.inputs), dict(now.inputs)
            parts = [
                f"{p}: {then.get(p, p)} → {later.get(p, p)}"
                for p in sorted(then.keys() | later.keys())
                if then.get(p, p) != later.get(p, p)
            ]
            changed.append(f"inputs changed ({'; '.join(parts)})")
        if self.outputs != now.outputs:
            changed.append(f"outputs changed ({_outputs(self.outputs)} → {_outputs(now.outputs)})")
        return changed

    def to_list(self) -> list[Any]:
        return [self.process, dict(self.inputs), self.outputs]

    @classmethod
    def from_list(cls, data: list[Any]) -> Wiring:
        process, inputs, outputs = data
        return cls(process, tuple(sorted(inputs.items())), outputs)


def _outputs(described: str) -> str:
    return described.removeprefix("outputs: ") or "none"


@dataclass(frozen=True)
class Fingerprint:
    """What a task's result depends on (see the module's docstring)."""

    code: Code
    wiring: Wiring
    env: str
    """The keyed hash of the env's name and settings."""
    credentials: str
    """The keyed hash of the env's credentials."""
    trace: Trace = field(default_factory=Trace)

    @functools.cached_property
    def key(self) -> str:
        """The fingerprint as one hash: equal keys, equal fingerprints (notes aside)."""
        data = self.to_dict()
        data["trace"].pop("notes", None)
        return digest(data)

    @functools.cached_property
    def stored(self) -> str:
        """The fingerprint as the history stores it (JSON, keys sorted): made once, for
        the attempt's row and the task's."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "code": [
                self.code.module,
                self.code.source,
                self.code.distribution,
                dict(self.code.imports),
            ],
            "wiring": self.wiring.to_list(),
            "env": self.env,
            "credentials": self.credentials,
            "trace": self.trace.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fingerprint:
        module, source, distribution, *imports = data["code"]
        code = Code(module, source, distribution, tuple(sorted((imports or [{}])[0].items())))
        if data.get("format") != FORMAT:  # recorded before traces: nothing to verify by
            recorded = f"format {data.get('format') or 1}"
            return cls(code, Wiring(""), "", "", Trace({LEGACY: {recorded: ""}}))
        return cls(
            code,
            Wiring.from_list(data["wiring"]),
            data["env"],
            data["credentials"],
            Trace.from_dict(data.get("trace") or {}),
        )

    @classmethod
    def from_stored(cls, text: str, key: str | None = None) -> Fingerprint:
        """The fingerprint the history stored as ``text`` (:attr:`stored`) under ``key``
        (:attr:`key`). A fingerprint of this format keeps both as they were recorded: a
        reused task records its success's fingerprint again without writing and hashing
        it again."""
        data = json.loads(text)
        made = cls.from_dict(data)
        if data.get("format") == FORMAT:  # an older one is read as legacy: made anew
            made.__dict__["stored"] = text
            if key is not None:
                made.__dict__["key"] = key
        return made

    def with_trace(self, trace: Trace) -> Fingerprint:
        return Fingerprint(self.code, self.wiring, self.env, self.credentials, trace)


def verify(recorded: Fingerprint, now: Fingerprint, world: World) -> list[str]:
    """Why a task that recorded ``recorded`` when it succeeded cannot be reused now, in
    the words of ``--explain``; an empty list: it can.

    ``now`` is the same task's fingerprint made before running it (no trace); ``world``
    checks each thing ``recorded``'s trace names, by kind (a kind without a check counts
    as changed: what cannot be verified is never taken as unchanged)."""
    if LEGACY in recorded.trace.reads:  # recorded before traces: nothing to compare
        return describe(LEGACY, list(recorded.trace.read(LEGACY)))
    reasons = [f"code changed ({what})" for what in recorded.code.changes(now.code)]
    reasons.extend(recorded.wiring.changes(now.wiring))
    if recorded.env != now.env:
        reasons.append("env changed")
    if recorded.credentials != now.credentials:
        reasons.append("env changed (credentials)")
    for part in (recorded.trace.reads, recorded.trace.writes):
        for kind in sorted(part, key=order):
            check = world.checks.get(kind)
            changed = [
                name
                for name, seen in sorted(part[kind].items())
                if check is None or not check(name, seen)
            ]
            if changed:
                reasons.extend(describe(kind, [world.shown(kind, name) for name in changed]))
    return list(dict.fromkeys(reasons))
