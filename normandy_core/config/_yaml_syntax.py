"""What the YAML parser says badly, said for people: characters YAML refuses, tabs in the
indentation, a key missing its ``:``.

ruamel.yaml reports a control character as a ``ReaderError`` (no line, no column: a
traceback until now), a tab as "found character that cannot start any token", and a
missing ``:`` where the parser finally gives up, often lines below the key at fault.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

from normandy_core.errors import Problem

_NOT_YAML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
"""A character outside YAML's printable set (YAML 1.2, 5.1): C0 and C1 controls but tab
and line breaks, DEL, surrogates, U+FFFE and U+FFFF. (Spelled as what is refused, not as
the complement of what is allowed: the same set, compiled in 1 ms rather than 10 at every
start.)"""

_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
"""Line breaks as the parser counts them (so that lines agree with its own marks)."""

_CONTROL_NAMES = {
    0x00: "null",
    0x07: "bell",
    0x08: "backspace",
    0x0B: "vertical tab",
    0x0C: "form feed",
    0x1B: "escape",
    0x7F: "delete",
}

MAX_CHARACTER_PROBLEMS = 20
"""Past this many, one more problem counts the rest (a binary file has thousands)."""


def character_problems(text: str, name: str) -> list[Problem]:
    """Each character YAML does not allow in ``text``, named, with its position.

    The messages never quote the text around the character (it may be a secret).
    """
    found = [m.start() for m in _NOT_YAML.finditer(text)]
    if not found:
        return []
    starts = [0, *(m.end() for m in _BREAK.finditer(text))]
    problems = []
    for offset in found[:MAX_CHARACTER_PROBLEMS]:
        line = bisect.bisect_right(starts, offset) - 1
        column = offset - starts[line]
        problems.append(Problem(name, line + 1, column + 1, "", _character(text[offset])))
    if len(found) > MAX_CHARACTER_PROBLEMS:
        offset = found[MAX_CHARACTER_PROBLEMS]
        line = bisect.bisect_right(starts, offset) - 1
        rest = len(found) - MAX_CHARACTER_PROBLEMS
        problems.append(
            Problem(
                name,
                line + 1,
                offset - starts[line] + 1,
                "",
                f"and {rest:,} more characters YAML does not allow: is this a text file?",
            )
        )
    return problems


def _character(char: str) -> str:
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return f"U+{code:04X} is not a character (the text is not valid Unicode); delete it"
    if code in (0xFFFE, 0xFFFF):
        return f"U+{code:04X} is not a character YAML allows; delete it"
    name = _CONTROL_NAMES.get(code)
    what = f"control character U+{code:04X}" + (f" ({name})" if name else "")
    return (
        f"{what} is not allowed in YAML; delete it (inside double quotes, write it as "
        f'"\\x{code:02x}")'
    )


# -- syntax errors ----------------------------------------------------------------------------


def syntax_message(exc: Any, text: str, secret: bool) -> tuple[int, int, str]:
    """0-based (line, column) and message of a ``MarkedYAMLError`` of ``text``.

    With ``secret``, the message never quotes the text (it holds credentials).
    """
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line, mark.column) if mark else (0, 0)
    problem = str(exc.problem or exc.context or "")
    lines = _lines(text)
    here = lines[line] if line < len(lines) else ""
    if "tab" in problem or here[column : column + 1] == "\t":
        message = "a tab character here: YAML indents with spaces only; replace it with spaces"
        return line, column, f"YAML syntax error: {message}"
    bom = here.find("\ufeff", max(0, column - 1), column + 1)
    if bom >= 0:  # an editor's invisible mark, where a file was pasted into another
        message = "a byte order mark (U+FEFF, invisible) here; delete it"
        return line, bom, f"YAML syntax error: {message}"
    key = _missing_colon(exc, lines, line)
    if key is not None:
        key_line, key_end, word = key
        after = "after the key on this line" if secret else f"after {word!r}"
        first, _, rest = word.partition(" ")
        if rest:  # `outputs customer_totals`: the colon goes after the key, the first word
            key_end -= len(word) - len(first)
            rest = rest.lstrip()
            after = "after the key on this line" if secret else f"after {first!r}"
            if not secret:
                after += f" ({first}: {rest})"
        stopped = f"line {line + 1}" + ("" if secret else f", column {column + 1}: {problem}")
        message = f"missing ':' {after}? (the parser stopped at {stopped})"
        return key_line, key_end, f"YAML syntax error: {message}"
    what = "invalid YAML" if secret else (problem or "invalid YAML")
    return line, column, f"YAML syntax error: {what}"


def _lines(text: str) -> list[str]:
    return _BREAK.split(text)


_PLAIN_KEY = re.compile(r"(?P<indent> *)(?P<word>[^\s\-?:,\[\]{}#&*!|>'\"%@`][^:#]*?)\s*(#.*)?\Z")
"""A line holding a plain word (or words) and no ``:``: a key that lost its colon."""

_MISSING_COLON_PROBLEMS = (
    "could not find expected ':'",
    "mapping values are not allowed in this context",
    "mapping values are not allowed here",
)
_LOOK_BACK = 50


def _missing_colon(exc: Any, lines: list[str], line: int) -> tuple[int, int, str] | None:
    """(line, column after the key, key) of the key likely missing its ``:``, if any.

    The parser reads a key without its colon as the start of a multi-line plain value,
    which continues through the more indented lines below it, up to the next ``:`` that
    it cannot accept: the key is the nearest line above that holds a plain word and no
    colon, with nothing less indented between it and where the parser stopped.
    """
    if str(exc.problem) not in _MISSING_COLON_PROBLEMS:
        return None
    context = exc.context_mark
    if str(exc.context) == "while scanning a simple key" and context is not None:
        found = _plain_key(lines, context.line)
        if found is not None:
            return found
    lowest = _indent(lines[line]) if line < len(lines) else 0
    for number in range(line - 1, max(-1, line - 1 - _LOOK_BACK), -1):
        text = lines[number]
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        indent = _indent(text)
        if indent <= lowest:
            found = _plain_key(lines, number)
            if found is not None:
                return found
        lowest = min(lowest, indent)
    return None


def _plain_key(lines: list[str], number: int) -> tuple[int, int, str] | None:
    match = _PLAIN_KEY.match(lines[number]) if number < len(lines) else None
    if match is None:
        return None
    word = match["word"]
    return number, len(match["indent"]) + len(word), word


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))
