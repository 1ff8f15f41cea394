"""Reading YAML with positions: every problem can be reported as ``file:line:column``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError

from normandy_core.errors import Problem, display_path

PathKey = str | int


class _Constructor(RoundTripConstructor):
    """Collects every duplicate key instead of stopping at the first one."""

    duplicates: list[tuple[Any, Any, Any]]

    def check_mapping_key(
        self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any
    ) -> bool:
        if key in mapping:
            self.duplicates.append((key, key_node.start_mark, mapping))
            return False
        return True


class YamlDocument:
    """A loaded YAML file: its data (round-trip types, order kept) and positions."""

    def __init__(self, path: Path, data: Any) -> None:
        self.path = path
        self.name = display_path(path)
        self.data = data

    def position(self, keys: Sequence[PathKey], *, at_key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at ``keys`` (or of its key with ``at_key``).

        Where the path does not exist (a missing key), the deepest existing node's position.
        """
        node = self.data
        pos: tuple[int, int] = (0, 0)
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            found: Any = None
            if isinstance(node, CommentedMap) and key in node:
                value = node[key]
                use_key = not last or at_key or value is None
                found = node.lc.key(key) if use_key else node.lc.value(key)
                node = value
            elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
                found = node.lc.item(key)
                node = node[key]
            else:
                break
            if found is not None:  # ruamel knows no position for some tagged nodes
                pos = found
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
    """
    name = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [Problem(name, 1, 1, "", f"cannot read the file: {exc.strerror or exc}")]
    except UnicodeDecodeError as exc:
        return None, [Problem(name, 1, 1, "", f"the file is not UTF-8 text: {exc.reason}")]
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    constructor = yaml.constructor
    assert isinstance(constructor, _Constructor)
    constructor.duplicates = []
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        # ruamel's messages may quote the text at fault: never for a file of secrets
        what = "invalid YAML" if secret else (exc.problem or exc.context or "invalid YAML")
        return None, [Problem(name, line, column, "", f"YAML syntax error: {what}")]
    except Exception as exc:  # a value its tag cannot build (`!!int abc`), and the like
        line, column = _mistagged(yaml, text)
        what = "a value does not fit its !! tag" if secret else str(exc)
        return None, [Problem(name, line, column, "", f"YAML error: {what}")]
    doc = YamlDocument(path, data)
    problems = [
        Problem(
            name,
            mark.line + 1,
            mark.column + 1,
            dotted([*_path_to(data, mapping), key]),
            f"duplicate key {key!r}: each key may appear only once in a mapping",
        )
        for key, mark, mapping in constructor.duplicates
    ]
    problems.extend(_tag_problems(doc, data, [], secret))
    return doc, problems


def _mistagged(yaml: YAML, text: str) -> tuple[int, int]:
    """Where the first scalar stands whose explicit core tag does not fit its text."""
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

    stack = [yaml.compose(text)]
    while stack:
        node = stack.pop(0)
        if isinstance(node, ScalarNode):
            implicit = yaml.resolver.resolve(ScalarNode, node.value, (True, False))
            if str(node.tag) != str(implicit) and str(node.tag) in _CORE_TAGS - {_STR}:
                return node.start_mark.line + 1, node.start_mark.column + 1
        elif isinstance(node, MappingNode):
            stack.extend(item for pair in node.value for item in pair)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return 1, 1


def _path_to(node: Any, target: Any) -> list[PathKey]:
    """The keys leading from ``node`` to the container ``target`` (found by identity)."""
    if node is target:
        return []
    items = (
        node.items()
        if isinstance(node, dict)
        else (enumerate(node) if isinstance(node, list) else ())
    )
    for key, value in items:
        if isinstance(value, (dict, list)):
            found = _path_to(value, target)
            if found is not None:
                return [key, *found]
    return None  # type: ignore[return-value]


_CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")
)
_STR = "tag:yaml.org,2002:str"


def _tag_problems(
    doc: YamlDocument, node: Any, keys: list[PathKey], secret: bool = False
) -> list[Problem]:
    """Explicit tags (``!!python/object``, ``!foo``) have no meaning here: report them."""
    problems: list[Problem] = []
    tag = getattr(node, "tag", None)
    tag_value = getattr(tag, "value", None)
    if tag_value is not None and str(tag_value) not in _CORE_TAGS:
        shown = str(tag_value).replace("tag:yaml.org,2002:", "!!")
        message = (
            "a YAML tag is not allowed here; remove it (quote a value that starts with '!')"
            if secret
            else f"YAML tag {shown} is not allowed; remove it"
        )
        problems.append(doc.problem(keys, message))
    if isinstance(node, dict):
        for key, value in node.items():
            problems.extend(_tag_problems(doc, value, [*keys, key], secret))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            problems.extend(_tag_problems(doc, value, [*keys, i], secret))
    return problems
