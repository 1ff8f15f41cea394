"""What the YAML parser says badly, said for people: characters YAML refuses.

ruamel.yaml reports a control character as a ``ReaderError``: no line, no column, and not
a ``MarkedYAMLError`` (a traceback until now); a lone surrogate (from a command line) as a
``UnicodeEncodeError``. They are found here first, all of them, each with its position.
"""

from __future__ import annotations

import bisect
import re

from normandy_core.errors import Problem

_NOT_YAML = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""A character outside YAML's printable set (YAML 1.2, 5.1): C0 and C1 controls but tab
and line breaks, DEL, surrogates, U+FFFE and U+FFFF."""

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
