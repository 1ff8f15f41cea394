"""Reading YAML with positions: every problem can be reported as ``file:line:column``.

How a document is read: ``_yaml_syntax`` first refuses characters YAML does not allow and
words the parser's errors for people; ``_yaml_build`` builds the data from the parser's
events, sharing and bounding aliases.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import StreamEndEvent

from normandy_core.config._yaml_build import (
    MAX_ALIAS_VALUES,
    Builder,
    Marks,
    PathKey,
    Position,
    Refused,
    dotted,
)
from normandy_core.config._yaml_syntax import character_problems, syntax_message
from normandy_core.errors import Problem, display_path

__all__ = [
    "MAX_ALIAS_VALUES",
    "PathKey",
    "Position",
    "YamlDocument",
    "dotted",
    "load_yaml",
    "parse_yaml",
]


class YamlDocument:
    """A loaded YAML document: its data (plain dicts, lists and scalars, order kept; an
    aliased value is one object shared by its uses) and where each key and value stands."""

    def __init__(self, name: str, data: Any, marks: dict[int, Marks] | None = None) -> None:
        self.name = name
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


def load_yaml(path: Path, *, secret: bool = False) -> tuple[YamlDocument | None, list[Problem]]:
    """Load ``path`` safely: no tag constructs a Python object, duplicate keys are errors.

    Returns the document (``None`` where it cannot be parsed) and its problems. With
    ``secret``, messages never quote the file's content (it holds credentials).
    """
    name = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except PermissionError:
        return None, [
            Problem(
                name,
                1,
                1,
                "",
                "cannot read the file: permission denied; let the user running normandy "
                f"read it (chmod u+r {name})",
            )
        ]
    except OSError as exc:
        return None, [Problem(name, 1, 1, "", f"cannot read the file: {exc.strerror or exc}")]
    except UnicodeDecodeError as exc:
        return None, [Problem(name, 1, 1, "", f"the file is not UTF-8 text: {exc.reason}")]
    return parse_yaml(text, name, secret=secret)


def parse_yaml(
    text: str, name: str, *, secret: bool = False
) -> tuple[YamlDocument | None, list[Problem]]:
    """Parse ``text`` (named ``name`` in problems), as :func:`load_yaml` does a file.

    The document is ``None`` when ``text`` is not YAML (a character YAML does not allow,
    a syntax error). A document Normandy refuses whole (nested too deep, ``<<`` merges
    copying too much) has ``None`` as its data, with the problem.

    The parser is ruamel.yaml's C parser where it is installed (25 times faster than the
    pure-Python one on a large configuration); the data is built from its events here
    (see ``_yaml_build``), so that every key and value keeps its position, every problem
    is collected, and aliases are shared and bounded.
    """
    problems = character_problems(text, name)
    if problems:
        return None, problems
    yaml = YAML(typ="safe")  # the C parser if ruamel.yaml.clib is installed
    constructor, parser = yaml.get_constructor_parser(text)
    builder = Builder(name, constructor, constructor.resolver, secret)
    try:
        data = _single_document(parser, builder)
    except MarkedYAMLError as exc:
        line, column, message = syntax_message(exc, text, secret)
        return None, [Problem(name, line + 1, column + 1, "", message)]
    except Refused as exc:
        return YamlDocument(name, None), [exc.problem]
    finally:
        parser.dispose()
    return YamlDocument(name, data, builder.marks), builder.problems


def _single_document(parser: Any, builder: Builder) -> Any:
    """The data of the stream's one document (``None`` for an empty stream)."""
    parser.get_event()  # the stream starts
    if parser.check_event(StreamEndEvent):
        return None
    parser.get_event()  # the document starts
    data = builder.document(parser)
    parser.get_event()  # the document ends
    if not parser.check_event(StreamEndEvent):
        event = parser.get_event()
        mark = event.start_mark
        builder.problems.append(
            Problem(
                builder.name,
                mark.line + 1,
                mark.column + 1,
                "",
                "a second YAML document starts here (after '---'); a file holds one "
                "document: remove the '---' line or split the file",
            )
        )
    return data
