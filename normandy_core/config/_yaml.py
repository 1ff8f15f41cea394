"""Reading YAML with positions: every problem can be reported as ``file:line:column``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from normandy_core.errors import Problem, display_path

PathKey = str | int


Position = tuple[int, int]
"""0-based (line, column), as the YAML parser gives them."""


class YamlDocument:
    """A loaded YAML file: its data (plain dicts, lists and scalars, order kept) and where
    each key and value stands in the file."""

    def __init__(
        self,
        path: Path,
        data: Any,
        marks: dict[int, dict[PathKey, tuple[Position, Position]]] | None = None,
    ) -> None:
        self.path = path
        self.name = display_path(path)
        self.data = data
        self._marks = marks or {}
        """id(container) -> key or index -> (position of the key, position of the value)."""

    def position(self, keys: Sequence[PathKey], *, at_key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at ``keys`` (or of its key with ``at_key``).

        Where the path does not exist (a missing key), the deepest existing node's position.
        """
        node = self.data
        pos: Position = (0, 0)
        for i, key in enumerate(keys):
            marks = self._marks.get(id(node)) if isinstance(node, (dict, list)) else None
            if marks is None or key not in marks:
                break
            value = node[key]
            use_key = i < len(keys) - 1 or at_key or value is None
            pos = marks[key][0 if use_key else 1]
            node = value
        return pos[0] + 1, pos[1] + 1

    def problem(self, keys: Sequence[PathKey], message: str, *, at_key: bool = False) -> Problem:
        line, column = self.position(keys, at_key=at_key)
        return Problem(self.name, line, column, dotted(keys), message)


def dotted(keys: Sequence[PathKey]) -> str:
    """``("flows", "main", "steps", "read", 0)`` -> ``flows.main.steps.read[0]``."""
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def load_yaml(path: Path, *, secret: bool = False) -> tuple[YamlDocument | None, list[Problem]]:
    """Load ``path`` safely: no tag constructs a Python object, duplicate keys are errors.

    Returns the document (``None`` where it cannot be parsed) and its problems. With
    ``secret``, messages never quote the file's content (it holds credentials).

    The file is parsed into nodes by ruamel.yaml's C parser where it is installed (25
    times faster than the pure-Python one on a large configuration), then built here,
    so that every key and value keeps its position and every problem is collected.
    """
    name = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [Problem(name, 1, 1, "", f"cannot read the file: {exc.strerror or exc}")]
    except UnicodeDecodeError as exc:
        return None, [Problem(name, 1, 1, "", f"the file is not UTF-8 text: {exc.reason}")]
    yaml = YAML(typ="safe")  # the C parser if ruamel.yaml.clib is installed
    try:
        root = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        # ruamel's messages may quote the text at fault: never for a file of secrets
        what = "invalid YAML" if secret else (exc.problem or exc.context or "invalid YAML")
        return None, [Problem(name, line, column, "", f"YAML syntax error: {what}")]
    builder = _Builder(name, yaml.constructor, secret)
    data = None if root is None else builder.build(root, [])
    return YamlDocument(path, data, builder.marks), builder.problems


_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = frozenset(
    _CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq")
)
_MERGE = _CORE + "merge"


class _Builder:
    """Builds plain data from composed YAML nodes, noting positions and problems."""

    def __init__(self, name: str, constructor: Any, secret: bool) -> None:
        self.name = name
        self.constructor = constructor
        self.secret = secret
        self.marks: dict[int, dict[PathKey, tuple[Position, Position]]] = {}
        self.problems: list[Problem] = []
        self._open: set[int] = set()  # nodes being built: an alias of one is a cycle

    def _problem(self, node: Any, keys: list[PathKey], message: str) -> None:
        mark = node.start_mark
        self.problems.append(
            Problem(self.name, mark.line + 1, mark.column + 1, dotted(keys), message)
        )

    def build(self, node: Any, keys: list[PathKey]) -> Any:
        tag = str(node.tag)
        if tag not in _ALLOWED_TAGS:
            shown = tag.replace(_CORE, "!!")
            self._problem(
                node,
                keys,
                "a YAML tag is not allowed here; remove it (quote a value that starts with '!')"
                if self.secret
                else f"YAML tag {shown} is not allowed; remove it",
            )
        if isinstance(node, ScalarNode):
            return self._scalar(node, keys, tag)
        if id(node) in self._open:
            self._problem(
                node, keys, "an alias refers to a node that contains it; remove the cycle"
            )
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return self._sequence(node, keys)
            return self._mapping(node, keys)
        finally:
            self._open.discard(id(node))

    def _scalar(self, node: ScalarNode, keys: list[PathKey], tag: str) -> Any:
        if tag not in _ALLOWED_TAGS:
            return node.value
        try:
            return self.constructor.construct_object(node)
        except Exception as exc:  # a value its tag cannot build (`!!int abc`)
            what = "a value does not fit its !! tag" if self.secret else str(exc)
            self._problem(node, keys, f"YAML error: {what}")
            return node.value

    def _sequence(self, node: SequenceNode, keys: list[PathKey]) -> list[Any]:
        out: list[Any] = []
        marks: dict[PathKey, tuple[Position, Position]] = {}
        for i, item in enumerate(node.value):
            out.append(self.build(item, [*keys, i]))
            at = (item.start_mark.line, item.start_mark.column)
            marks[i] = (at, at)
        self.marks[id(out)] = marks
        return out

    def _mapping(self, node: MappingNode, keys: list[PathKey]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        marks: dict[PathKey, tuple[Position, Position]] = {}
        merges: list[Any] = []
        for key_node, value_node in node.value:
            if str(key_node.tag) == _MERGE:
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, keys, "a key must be a plain value, not a mapping or list")
                continue
            key = self._scalar(key_node, keys, str(key_node.tag))
            if key in out:
                self._problem(
                    key_node,
                    [*keys, key],
                    f"duplicate key {key!r}: each key may appear only once in a mapping",
                )
                continue
            out[key] = self.build(value_node, [*keys, key])
            marks[key] = (
                (key_node.start_mark.line, key_node.start_mark.column),
                (value_node.start_mark.line, value_node.start_mark.column),
            )
        for merged in self._merged(merges, keys):  # `<<: *defaults`: explicit keys win
            for key, value in merged.items():
                if key not in out:
                    out[key] = value
                    marks[key] = self.marks[id(merged)][key]
        self.marks[id(out)] = marks
        return out

    def _merged(self, values: list[Any], keys: list[PathKey]) -> list[dict[Any, Any]]:
        """The mappings of ``<<`` keys, earlier ones first (they win over later ones)."""
        found: list[dict[Any, Any]] = []
        for value in values:
            items = value.value if isinstance(value, SequenceNode) else [value]
            for item in items:
                built = self.build(item, keys)
                if isinstance(built, dict):
                    found.append(built)
                else:
                    self._problem(item, keys, "'<<' merges a mapping (or a list of mappings) only")
        return found
