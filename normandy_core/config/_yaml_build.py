"""Plain data from the YAML parser's events: positions kept, aliases shared and bounded.

The data is built straight from the parser's event stream, in one loop with a stack of
open collections, never by recursion: a document nested 100,000 deep is a problem, not a
crash (ruamel's composers recurse, and the C one overflows the C stack).

An anchored value is built once; each alias of it is *the same object* (a dict or list
shared, never copied). What the rest of Normandy does with the data (validation, plain
copies, interpolation, the plan) walks it as if every alias were written out in full, so
the builder counts that size — memoized per value — and refuses a value whose aliases
would add more than :data:`MAX_ALIAS_VALUES` values: the "billion laughs" of 481 bytes is
then a positioned problem, built in a millisecond.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ruamel.yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import ScalarNode

from normandy_core.errors import Problem

PathKey = str | int

Position = tuple[int, int]
"""0-based (line, column), as the YAML parser gives them."""

Marks = dict[PathKey, tuple[Position, Position]]
"""Of one container: key or index -> (position of the key, position of the value)."""

MAX_ALIAS_VALUES = 1_000_000
"""How many values aliases (and ``<<`` merges) may add to a document, counted as if each
alias were written out in full. Real configurations stay far below (10,000 process entries
that each merge a defaults mapping of 20 values add 200,000); a "billion laughs" of 481
bytes goes to 2.1 million at its seventh level, and a billion at its tenth."""

MAX_DEPTH = 100
"""How deeply collections may nest. Configurations use about ten levels; the code that
reads the data walks it recursively."""

_CORE = "tag:yaml.org,2002:"
_STR = _CORE + "str"
_MERGE = _CORE + "merge"
_ALLOWED_TAGS = frozenset(
    _CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq")
)


class Refused(Exception):
    """The document is refused whole (nested too deep, merges copying too much): building
    stops."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _Missing:
    """A map frame's state between a key and its value."""


_NO_KEY = _Missing()  # the next value is a key
_MERGE_KEY = _Missing()  # the next value is merged (`<<: *defaults`)
_SKIP = _Missing()  # the next value is dropped (its key was a problem)
_OPEN = _Missing()  # an anchor whose collection is being built


class _Frame:
    """A collection being built."""

    __slots__ = (
        "anchor",
        "data",
        "extra",
        "key",
        "key_at",
        "keys",
        "marks",
        "merges",
        "at",
        "size",
    )

    def __init__(self, data: Any, keys: list[PathKey], at: Position, anchor: str | None) -> None:
        self.data = data
        self.keys = keys
        self.at = at
        self.anchor = anchor
        self.marks: Marks = {}
        self.size = 1  # values in the data fully expanded, this one included
        self.extra = 0  # of those, the values aliases add
        self.key: Any = _NO_KEY
        self.key_at: Position = at
        self.merges: list[tuple[Any, Position, list[PathKey]]] = []


def dotted(keys: Sequence[PathKey]) -> str:
    """``("flows", "main", "steps", "read", 0)`` -> ``flows.main.steps.read[0]``."""
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


class Builder:
    """Builds one document's plain data from a parser, noting positions and problems."""

    def __init__(self, name: str, constructor: Any, resolver: Any, secret: bool) -> None:
        self.name = name
        self.constructor = constructor
        self.resolver = resolver
        self.secret = secret
        self.marks: dict[int, Marks] = {}
        self.problems: list[Problem] = []
        self._anchors: dict[str, Any] = {}  # name -> (value, size), or _OPEN
        self._anchored_at: dict[str, Position] = {}
        self._sizes: dict[int, int] = {}  # id(container) -> its size fully expanded
        self._dropped: list[Any] = []  # kept alive: their ids stay theirs
        self._copied = 0  # keys copied by `<<` merges, in the whole document

    def problem(self, at: Position, keys: list[PathKey], message: str) -> None:
        self.problems.append(Problem(self.name, at[0] + 1, at[1] + 1, dotted(keys), message))

    # -- the loop ---------------------------------------------------------------------------

    def document(self, parser: Any) -> Any:
        """Consume one document's node events (after its DocumentStartEvent); its data."""
        stack: list[_Frame] = []
        while True:
            event = parser.get_event()
            kind = type(event)
            at: Position = (event.start_mark.line, event.start_mark.column)
            if kind is ScalarEvent:
                value: Any = self._scalar(event, stack, at)
                size, extra = 1, 0
            elif kind is AliasEvent:
                value, size = self._alias(event.anchor, stack, at)
                extra = size
            elif kind is SequenceStartEvent or kind is MappingStartEvent:
                stack.append(self._open(event, kind is MappingStartEvent, stack, at))
                continue
            elif kind is SequenceEndEvent or kind is MappingEndEvent:
                frame = stack.pop()
                value, size, extra = self._close(frame)
                at = frame.at
            else:  # pragma: no cover - the parser gives only node events inside a document
                raise AssertionError(f"unexpected YAML event {event!r}")
            if not stack:
                return value
            self._add(stack[-1], value, size, extra, at)

    def _child_keys(self, stack: list[_Frame]) -> list[PathKey]:
        """The key path of the value that comes next."""
        if not stack:
            return []
        frame = stack[-1]
        if isinstance(frame.data, list):
            return [*frame.keys, len(frame.data)]
        key = frame.key
        return frame.keys if isinstance(key, _Missing) else [*frame.keys, key]

    # -- values -----------------------------------------------------------------------------

    def _tag(self, event: Any, at: Position, stack: list[_Frame]) -> str | None:
        """The event's explicit tag, ``None`` when it has none; a problem if not allowed."""
        tag = event.tag
        if tag is None or tag == "!":
            return None
        tag = str(tag)
        if tag not in _ALLOWED_TAGS:
            shown = tag.replace(_CORE, "!!")
            self.problem(
                at,
                self._child_keys(stack),
                "a YAML tag is not allowed here; remove it (quote a value that starts with '!')"
                if self.secret
                else f"YAML tag {shown} is not allowed; remove it",
            )
        return tag

    def _scalar(self, event: Any, stack: list[_Frame], at: Position) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = str(self.resolver.resolve(ScalarNode, event.value, event.implicit))
            top = stack[-1] if stack else None
            if tag == _MERGE and top and isinstance(top.data, dict) and top.key is _NO_KEY:
                return _MERGE_KEY  # a `<<` key (a `<<` value is the text "<<")
        else:
            tag = self._tag(event, at, stack)
        if tag == _STR:
            value: Any = event.value
        elif tag not in _ALLOWED_TAGS:
            value = event.value
        else:
            node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
            try:
                value = self.constructor.construct_object(node)
            except Exception as exc:  # a value its tag cannot build (`!!int abc`)
                what = "a value does not fit its !! tag" if self.secret else str(exc)
                self.problem(at, self._child_keys(stack), f"YAML error: {what}")
                value = event.value
        if event.anchor is not None:
            self._define(event.anchor, at, stack)
            self._anchors[event.anchor] = (value, 1)
        return value

    def _define(self, name: str, at: Position, stack: list[_Frame]) -> None:
        """An anchor starts here: aliases of it are cycles until its value is built."""
        first = self._anchored_at.setdefault(name, at)
        if first != at:
            self.problem(
                at,
                self._child_keys(stack),
                f"{'an anchor' if self.secret else f'anchor &{name}'} is defined twice (first "
                f"at line {first[0] + 1}); give each anchor its own name",
            )
        self._anchors[name] = _OPEN

    def _alias(self, name: str, stack: list[_Frame], at: Position) -> tuple[Any, int]:
        found = self._anchors.get(name)
        if found is None:
            self.problem(
                at,
                self._child_keys(stack),
                "an alias (*name) refers to no anchor; define the anchor (&name) before the alias"
                if self.secret
                else f"alias *{name} refers to no anchor; define &{name} before it is used",
            )
            return None, 1
        if found is _OPEN:
            self.problem(
                at,
                self._child_keys(stack),
                "an alias refers to a node that contains it; remove the cycle",
            )
            return None, 1
        return found  # type: ignore[no-any-return]

    # -- collections ------------------------------------------------------------------------

    def _open(self, event: Any, mapping: bool, stack: list[_Frame], at: Position) -> _Frame:
        if len(stack) >= MAX_DEPTH:
            raise Refused(
                Problem(
                    self.name,
                    at[0] + 1,
                    at[1] + 1,
                    "",
                    f"the data nests deeper than {MAX_DEPTH} levels; flatten it",
                )
            )
        self._tag(event, at, stack)
        if event.anchor is not None:
            self._define(event.anchor, at, stack)
        return _Frame({} if mapping else [], self._child_keys(stack), at, event.anchor)

    def _close(self, frame: _Frame) -> tuple[Any, int, int]:
        """The finished collection, its size and the part of it aliases add."""
        if frame.merges:
            self._merge(frame)
        data: Any = frame.data
        self.marks[id(data)] = frame.marks
        size, extra = frame.size, frame.extra
        if extra > MAX_ALIAS_VALUES:
            self.problem(
                frame.at,
                frame.keys,
                f"this value would expand to {size:,} values through its aliases, more "
                f"than the {MAX_ALIAS_VALUES:,} allowed: each alias (*name) stands for a "
                "full copy of its anchor (&name), so aliases of aliases multiply; write "
                "the values out, or nest fewer aliases",
            )
            self._dropped.append(data)
            data, size, extra = None, 1, 0
        else:
            self._sizes[id(data)] = size
        if frame.anchor is not None:
            self._anchors[frame.anchor] = (data, size)
        return data, size, extra

    def _add(self, frame: _Frame, value: Any, size: int, extra: int, at: Position) -> None:
        """Put a finished value into the collection being built."""
        data = frame.data
        if isinstance(data, list):
            frame.marks[len(data)] = (at, at)
            data.append(value)
        elif frame.key is _NO_KEY:
            self._add_key(frame, value, at)
            return
        elif frame.key is _MERGE_KEY:
            frame.merges.append((value, at, frame.keys))
            frame.key = _NO_KEY
            return
        elif frame.key is _SKIP:
            self._dropped.append(value)
            frame.key = _NO_KEY
            return
        else:
            data[frame.key] = value
            frame.marks[frame.key] = (frame.key_at, at)
            frame.key = _NO_KEY
        frame.size += size
        frame.extra += extra

    def _add_key(self, frame: _Frame, key: Any, at: Position) -> None:
        frame.key_at = at
        if key is _MERGE_KEY:
            frame.key = _MERGE_KEY
        elif isinstance(key, (dict, list)):
            self.problem(at, frame.keys, "a key must be a plain value, not a mapping or list")
            frame.key = _SKIP
        elif key in frame.data:
            self.problem(
                at,
                [*frame.keys, key],
                f"duplicate key {key!r}: each key may appear only once in a mapping",
            )
            frame.key = _SKIP
        else:
            frame.key = key

    def _merge(self, frame: _Frame) -> None:
        """Apply ``<<`` keys: explicit keys win, then earlier merged mappings."""
        data: dict[Any, Any] = frame.data
        for value, at, keys in frame.merges:
            if isinstance(value, list):
                marks = self.marks.get(id(value), {})
                items = [(item, marks.get(i, (at, at))[1]) for i, item in enumerate(value)]
            else:
                items = [(value, at)]
            for item, item_at in items:
                if not isinstance(item, dict):
                    self.problem(
                        item_at, keys, "'<<' merges a mapping (or a list of mappings) only"
                    )
                    break  # one problem says it: a list of a million would say it a million times
                item_marks = self.marks.get(id(item), {})
                for key, merged in item.items():
                    if key in data:
                        continue
                    data[key] = merged
                    frame.marks[key] = item_marks.get(key, (at, at))
                    size = self._size(merged)
                    frame.size += size
                    frame.extra += size
                self._copied += len(item)
                if self._copied > MAX_ALIAS_VALUES:
                    # the copies are real (new mappings): stop before they fill the memory
                    raise Refused(
                        Problem(
                            self.name,
                            at[0] + 1,
                            at[1] + 1,
                            dotted(keys),
                            f"'<<' merges in this file copy more than {MAX_ALIAS_VALUES:,} "
                            "keys; merge smaller mappings, or fewer times",
                        )
                    )

    def _size(self, value: Any) -> int:
        return self._sizes.get(id(value), 1) if isinstance(value, (dict, list)) else 1
