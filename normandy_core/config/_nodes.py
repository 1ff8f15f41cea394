"""Helpers shared by the readers of the configuration: positions, and plain data made
from the YAML tree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from normandy_core.config._yaml import PathKey, YamlDocument
from normandy_core.errors import Problem

EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Location:
    """Where something is written: a file, 1-based line and column, and its key path."""

    file: str
    line: int
    column: int
    path: str
    via: str = ""
    """A template's line, as one use of it sees it: said after each message
    (``in template 'train', used by step 'linear' at line 40``)."""

    def problem(self, message: str) -> Problem:
        if self.via:
            message = f"{message} ({self.via})"
        return Problem(self.file, self.line, self.column, self.path, message)


def locate(doc: YamlDocument, keys: list[PathKey], *, at_key: bool = False) -> Location:
    problem = doc.problem(keys, "", at_key=at_key)
    return Location(problem.file, problem.line, problem.column, problem.path)


def sortable_keys(
    doc: YamlDocument,
    node: Any,
    rules: Mapping[str, Any],
    keys: list[PathKey],
    problems: list[Problem],
) -> Any:
    """``node`` without the keys the schema checks that are neither text nor integers (a
    null, a float, a date): each is a problem here, since cerberus cannot even sort its
    errors about such a key beside a text one (a ``TypeError``)."""
    if not isinstance(node, Mapping):
        return node
    checked = ("schema" in rules and not rules.get("allow_unknown")) or "keysrules" in rules
    out = {}
    for key, value in node.items():
        if checked and not isinstance(key, (str, int)):
            what = "null" if key is None else f"{type(key).__name__} {key!r}"
            message = f"a key here must be a name, not {what}; quote it or rename it"
            problems.append(doc.problem([*keys, key], message, at_key=True))
            continue
        below = rules["schema"].get(key) if "schema" in rules else rules.get("valuesrules")
        out[key] = sortable_keys(doc, value, below, [*keys, key], problems) if below else value
    return out


def mapping(node: Any) -> Mapping[Any, Any]:
    return node if isinstance(node, Mapping) else {}


def frozen(node: Any) -> Mapping[str, Any]:
    """A read-only plain copy of a params mapping (round-trip YAML types made plain)."""
    return MappingProxyType(plain(node)) if isinstance(node, Mapping) else EMPTY


def plain(node: Any) -> Any:
    """Round-trip YAML containers and scalars as plain ``dict``/``list``/``str``/``int``…"""
    if isinstance(node, Mapping):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    for kind in (str, int, float):
        if isinstance(node, kind):
            return kind(node)
    return node
