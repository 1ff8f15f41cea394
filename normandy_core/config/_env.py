"""``${env:NAME}`` and ``${env:NAME:default}`` in string values."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_START = "${env:"
_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
_SHOWN = 40  # characters of a malformed reference quoted in its message
_FORMS = (
    "write ${env:NAME} or ${env:NAME:default}, NAME made of letters, digits and '_' "
    "(not starting with a digit)"
)


class BadReference(ValueError):
    """An ``${env:…}`` reference that cannot be replaced."""

    def message(self, *, secret: bool = False) -> str:
        """What is wrong and how to fix it; with ``secret``, no text of the value."""
        raise NotImplementedError


class MissingVariable(BadReference):
    """An environment variable is referenced, unset, and has no default."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)

    def message(self, *, secret: bool = False) -> str:
        return (
            f"environment variable {self.name} is not set; set it or give a default: "
            f"${{env:{self.name}:default}}"
        )


class MalformedReference(BadReference):
    """``${env:`` that does not start a reference of the right form (``${env:}``,
    ``${env:A B}``, no closing brace, another reference inside a default)."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(text)

    def message(self, *, secret: bool = False) -> str:
        if secret:
            return f"a malformed ${{env:…}} reference; {_FORMS}"
        shown = self.text if len(self.text) <= _SHOWN else self.text[: _SHOWN - 1] + "…"
        return f"malformed reference {shown!r}; {_FORMS}"


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Replace each ``${env:NAME[:default]}`` in ``text``.

    Raises :class:`MissingVariable` or :class:`MalformedReference` (both
    :class:`BadReference`) for the first reference that cannot be replaced.
    """
    if _START not in text:
        return text
    out: list[str] = []
    done = 0
    start = text.find(_START)
    while start >= 0:
        match = _REF.match(text, start)
        if match is None or _START in (match.group(2) or ""):
            end = text.find("}", start)
            raise MalformedReference(text[start : len(text) if end < 0 else end + 1])
        out.append(text[done:start])
        out.append(_value(match, environ))
        done = match.end()
        start = text.find(_START, done)
    out.append(text[done:])
    return "".join(out)


def _value(match: re.Match[str], environ: Mapping[str, str]) -> str:
    name, default = match.group(1), match.group(2)
    if name in environ:
        return environ[name]
    if default is not None:
        return default
    raise MissingVariable(name)


def interpolate_tree(
    node: Any,
    environ: Mapping[str, str],
    on_problem: Callable[[list[str | int], str], None],
    keys: list[str | int] | None = None,
    *,
    secret: bool = False,
) -> Any:
    """A plain copy of ``node`` (dicts, lists, scalars) with every string interpolated.

    ``on_problem(keys, message)`` is called for each string holding a reference that
    cannot be replaced (an unset variable, a malformed reference), which is left as it
    was, so that every problem can be reported at once. With ``secret``, messages never
    quote the value.
    """
    keys = keys or []
    if isinstance(node, Mapping):
        return {
            k: interpolate_tree(v, environ, on_problem, [*keys, k], secret=secret)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [
            interpolate_tree(v, environ, on_problem, [*keys, i], secret=secret)
            for i, v in enumerate(node)
        ]
    if isinstance(node, str):
        try:
            return interpolate(node, environ)
        except BadReference as exc:
            on_problem(keys, exc.message(secret=secret))
            return node
    return node
