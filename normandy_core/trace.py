"""What a task did that its result may depend on, recorded while it ran (SPEC 13): its
*trace*, checked the next time before its result is reused (*verifying traces*, Mokhov,
Mitchell, Peyton Jones, "Build systems à la carte").

A :class:`Trace` is plain data: for each **kind** of read, what the task saw of each thing
it read, as a short string (a content hash, a version, a stamp; :data:`ABSENT` for a thing
it looked for that did not exist). The kinds of this release:

===================  =====================================  ==================================
kind                 name                                   what was seen
===================  =====================================  ==================================
``variables``        a variable read (inputs, ``pipe.vars``) its content hash
``exists``           a variable tested (``name in pipe.vars``) ``yes`` or ``no``
``listing``          ``variables`` (``pipe.vars.keys()``)    the hash of the names
``params``           a key of ``params`` read; ``*``: all    the keyed hash of its value
``environ``          an environment variable read; ``*``     the keyed hash of its value
``files``            a file opened for reading (its path)   size, times, inode, content hash
``folders``          a folder listed (its path)             the keyed hash of its entries
``modules``          a project module it imported or ran    the hash of its source
``libraries``        a library it imported (top-level name) ``distribution==version``
``programs``         a program it started                   nothing: never verifiable
===================  =====================================  ==================================

A kind is checked by a *check* that the caller of :func:`~normandy_core.fingerprint.verify`
gives for it (see :class:`World`); a kind that has none (a kind recorded by a newer
Normandy, or one that can never be verified, as ``programs``) counts as changed. A new
kind (datasets, issue 21) is a new entry of :data:`KINDS` and a new check: neither
``verify`` nor its callers change. ``writes`` holds, the same way, what a task wrote that
must still be there for its result to stand (checked like reads). ``notes`` are facts
kept with the trace and never checked: the modules the task imported (for preloading them
next time) and the files it wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

ABSENT = "-"
"""What is noted for a thing a task looked for that did not exist."""

EVERYTHING = "*"
"""The name under which a kind read whole is noted (``params`` passed to a library)."""

VARIABLE = "variables"
EXISTS = "exists"
LISTING = "listing"
PARAM = "params"
ENVIRON = "environ"
FILE = "files"
FOLDER = "folders"
MODULE = "modules"
LIBRARY = "libraries"
PROGRAM = "programs"
LEGACY = "legacy"
"""A fingerprint recorded before traces (its only "read": the format it was recorded in)."""

IMPORTED = "imported"
"""A note: the modules the task imported while it ran (loaded, or asked for)."""
WRITTEN = "written files"
"""A note: the files the task opened for writing."""


@dataclass(frozen=True)
class Kind:
    """How changed reads of one kind are told in ``--explain``: ``template`` with ``{}``
    for what changed; ``joined``: one reason for all of them (``params changed (a: 1 → 2;
    b: …)``), else one each."""

    template: str
    joined: bool = False


KINDS: dict[str, Kind] = {
    VARIABLE: Kind("input changed ({})"),
    EXISTS: Kind("input changed ({})"),
    LISTING: Kind("input changed (the list of {})"),
    PARAM: Kind("params changed ({})", joined=True),
    ENVIRON: Kind("environment changed ({})"),
    FILE: Kind("file changed ({})"),
    FOLDER: Kind("folder changed ({})"),
    MODULE: Kind("code changed ({})"),
    LIBRARY: Kind("code changed ({})"),
    PROGRAM: Kind("it started {} when it ran: what a program reads is not traced"),
    LEGACY: Kind("recorded by an older Normandy ({}), before it traced what tasks read"),
}
"""The kinds of reads this Normandy knows, in the order reasons are given."""


def describe(kind: str, shown: list[str]) -> list[str]:
    """The reasons for the changed reads ``shown`` (each as the world shows it) of
    ``kind``; a kind this Normandy does not know cannot be verified."""
    how = KINDS.get(kind)
    if how is None:
        return [f"recorded what it read as {kind!r}, which this Normandy cannot verify"]
    if how.joined:
        return [how.template.format("; ".join(shown))]
    return [how.template.format(what) for what in shown]


Reads = Mapping[str, Mapping[str, str]]
"""Kind -> name -> what was seen."""


@dataclass(frozen=True)
class Trace:
    """What a task read (and wrote) that its result depends on; see the module."""

    reads: Reads = field(default_factory=dict)
    writes: Reads = field(default_factory=dict)
    notes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def read(self, kind: str) -> Mapping[str, str]:
        return self.reads.get(kind, {})

    def note(self, what: str) -> tuple[str, ...]:
        return tuple(self.notes.get(what, ()))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reads": _plain(self.reads)}
        if self.writes:
            out["writes"] = _plain(self.writes)
        if self.notes:
            out["notes"] = {k: list(v) for k, v in self.notes.items() if v}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trace:
        return cls(
            _plain(data.get("reads") or {}),
            _plain(data.get("writes") or {}),
            {k: tuple(v) for k, v in (data.get("notes") or {}).items()},
        )

    def merged(self, other: Trace) -> Trace:
        """This trace with ``other``'s reads, writes and notes added (its own win)."""
        return Trace(
            _merge(other.reads, self.reads),
            _merge(other.writes, self.writes),
            {
                k: tuple(dict.fromkeys((*other.note(k), *self.note(k))))
                for k in other.notes.keys() | self.notes.keys()
            },
        )


def _plain(reads: Reads) -> dict[str, dict[str, str]]:
    return {kind: dict(sorted(seen.items())) for kind, seen in sorted(reads.items()) if seen}


def _merge(low: Reads, high: Reads) -> dict[str, dict[str, str]]:
    out = {kind: dict(seen) for kind, seen in low.items()}
    for kind, seen in high.items():
        out.setdefault(kind, {}).update(seen)
    return _plain(out)


Check = Callable[[str, str], bool]
"""``(name, what was seen) -> whether it is still so``."""


def _as_is(kind: str, name: str) -> str:
    return name


@dataclass(frozen=True)
class World:
    """How the things a trace names are now: a :data:`Check` per kind, and how a changed
    read is shown (``shown(kind, name)``: a path relative to the project, a param's old
    and new values…)."""

    checks: Mapping[str, Check] = field(default_factory=dict)
    shown: Callable[[str, str], str] = _as_is


def order(kind: str) -> tuple[int, str]:
    """Where ``kind``'s reasons come among the others: :data:`KINDS`' order, unknown
    kinds last."""
    known = list(KINDS)
    return (known.index(kind) if kind in known else len(known), kind)
