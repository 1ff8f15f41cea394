"""Params as nested mappings (SPEC 20): merging them key by key at any depth, finding one
by its key path (``split_options.test_size``), and setting one there (``--param
a.b.c=V``), with messages that name the keys that exist where a path goes wrong.

Pure functions of plain data, shared by the plan (merging, ``--param``), the checks
before a run (a key path that names nothing) and the workers (an argument given from
``params``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["KeyPathError", "lookup", "merge_deep", "set_path", "split_path"]


class KeyPathError(LookupError):
    """A key path that names nothing in a params mapping; ``str()`` says where it goes
    wrong and which keys exist there (with a *did you mean*)."""

    def __init__(self, path: Sequence[str], depth: int, found: Any) -> None:
        self.path = tuple(path)
        self.depth = depth
        """How many keys of ``path`` were found before it went wrong."""
        self.found = found
        """What stands where it went wrong (a mapping without the next key, or a value
        that is not a mapping)."""
        super().__init__(self.describe())

    def describe(self) -> str:
        where = ".".join(self.path[: self.depth])
        key = self.path[self.depth]
        at = f"params.{where}" if where else "params"
        if not isinstance(self.found, Mapping):
            return f"{at} is {_kind(self.found)}, not a mapping: it has no key {key!r}"
        keys = [str(k) for k in self.found]
        close = difflib.get_close_matches(key, keys, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        listed = ", ".join(keys[:20]) + (f" and {len(keys) - 20} more" if len(keys) > 20 else "")
        return f"{at} has no key {key!r} ({hint}its keys: {listed or 'none'})"


def split_path(text: str) -> tuple[str, ...]:
    """``"a.b.c"`` -> ``("a", "b", "c")``."""
    return tuple(text.split("."))


def lookup(params: Mapping[str, Any], path: Sequence[str]) -> Any:
    """The value at ``path`` in ``params`` (``()``: ``params`` itself);
    :class:`KeyPathError` where a key is missing or a value on the way is not a mapping."""
    node: Any = params
    for depth, key in enumerate(path):
        if not isinstance(node, Mapping) or key not in node:
            raise KeyPathError(path, depth, node)
        node = node[key]
    return node


def merge_deep(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` on top, key by key at any depth: a mapping of ``over``
    merges into a mapping of ``base``; any other value (a list too) replaces what was
    there. Neither argument is changed."""
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = merge_deep(below, value)
        else:
            merged[key] = value
    return merged


def set_path(params: Mapping[str, Any], path: Sequence[str], value: Any) -> dict[str, Any]:
    """A copy of ``params`` with the key ``path[-1]`` of the mapping at ``path[:-1]`` set
    to ``value`` (the mappings on the way copied, the others shared);
    :class:`KeyPathError` where that mapping is not there."""
    head, *rest = path
    copy = dict(params)
    if not rest:
        copy[head] = value
        return copy
    below = params.get(head)
    if not isinstance(below, Mapping):
        raise KeyPathError(path, 0, params) if head not in params else KeyPathError(path, 1, below)
    try:
        copy[head] = set_path(below, rest, value)
    except KeyPathError as exc:
        raise KeyPathError(path, exc.depth + 1, exc.found) from None
    return copy


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"
