"""``${env:NAME}`` and ``${env:NAME:default}`` in string values."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


class MissingVariable(LookupError):
    """An environment variable is referenced, unset, and has no default."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Replace each ``${env:NAME[:default]}`` in ``text``; raise :class:`MissingVariable`."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise MissingVariable(name)

    return _REF.sub(replace, text) if "${env:" in text else text


def interpolate_tree(
    node: Any,
    environ: Mapping[str, str],
    on_missing: Callable[[list[str | int], str], None],
    keys: list[str | int] | None = None,
) -> Any:
    """A plain copy of ``node`` (dicts, lists, scalars) with every string interpolated.

    ``on_missing(keys, name)`` is called for each unset variable, whose reference is left
    as it was, so that every problem can be reported at once.
    """
    keys = keys or []
    if isinstance(node, Mapping):
        return {k: interpolate_tree(v, environ, on_missing, [*keys, k]) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, environ, on_missing, [*keys, i]) for i, v in enumerate(node)]
    if isinstance(node, str):
        try:
            return interpolate(node, environ)
        except MissingVariable as exc:
            on_missing(keys, exc.name)
            return node
    return node
