"""Reading a process's params: one clear :class:`ParamError` per problem, naming the
process, the param and what to give; and the ``{confs.KEY}`` / ``{credentials.KEY}``
placeholders that keep environment settings and secrets out of ``pipeline_conf.yml``.

A param given as ``null`` counts as not given (YAML ``options:`` with nothing after it).
Unknown params are not errors: Normandy merges the flow's params into every process's.
"""

from __future__ import annotations

import inspect
import re
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from normandy_core import check_variable_name

if TYPE_CHECKING:
    from normandy_core.pipe import Pipe

_PLACEHOLDER = re.compile(r"\{(confs|credentials)\.([A-Za-z0-9_.-]+)\}")


class ParamError(ValueError):
    """A param of a process is missing or invalid; ``process`` and ``param`` name it."""

    def __init__(self, process: str, param: str, message: str) -> None:
        self.process = process
        self.param = param
        super().__init__(f"{process}: params.{param} {message}")


class Params:
    """Checked access to the ``params`` of one call of ``process``."""

    def __init__(self, process: str, params: Mapping[str, Any], pipe: Pipe) -> None:
        self.process = process
        self.params = params
        self.pipe = pipe

    def error(self, key: str, message: str) -> ParamError:
        return ParamError(self.process, key, message)

    def given(self, key: str) -> bool:
        return self.params.get(key) is not None

    def text(self, key: str, what: str, *, required: bool = True) -> str | None:
        """A non-empty string; ``what`` says what to give, for the error message."""
        value = self.params.get(key)
        if value is None:
            if required:
                raise self.error(key, f"is required ({what})")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string ({what}), not {value!r}")
        return value

    def var(self, key: str = "var", what: str = "the name of the variable") -> str:
        """A valid variable name (SPEC 5)."""
        name = self.text(key, what)
        assert name is not None
        try:
            return check_variable_name(name)
        except ValueError as exc:
            raise self.error(key, f"is not a valid variable name: {exc}") from None

    def path(self, key: str, what: str, *, required: bool = True) -> Path | None:
        """A file path with ``{confs.KEY}`` filled, relative to the project root unless
        absolute."""
        text = self.text(key, what, required=required)
        if text is None:
            return None
        filled = fill(text, self.pipe, self.error, key, credentials=False)
        return resolve(self.pipe.path, filled)

    def mapping(self, key: str, what: str) -> dict[str, Any]:
        """A mapping with string keys (empty when not given)."""
        value = self.params.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self.error(key, f"must be a mapping ({what}), not {value!r}")
        return dict(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.params.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def number(self, key: str, default: float, what: str) -> float:
        """A positive number of ``what``."""
        value = self.params.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.error(key, f"must be a positive number ({what}), not {value!r}")
        return float(value)

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.params.get(key)
        if value is None:
            return default
        if value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return str(value)

    def one_of(self, first: str, second: str, what: str) -> str:
        """The key, of two exclusive ones, that is given; ``what`` describes both."""
        given = [key for key in (first, second) if self.given(key)]
        if not given:
            raise self.error(first, f"or params.{second} is required ({what})")
        if len(given) > 1:
            raise self.error(first, f"and params.{second} are both given: give one ({what})")
        return given[0]

    def variable(self, name: str, types: tuple[type, ...], key: str = "var") -> Any:
        """The value of the variable ``name`` (given as ``params[key]``), one of ``types``."""
        if name not in self.pipe.vars:
            known = ", ".join(self.pipe.vars.keys()) or "none"
            raise self.error(
                key,
                f"names no variable of this flow: {name!r} (known: {known}); a process of "
                "an earlier step must write it",
            )
        value = self.pipe.vars[name]
        if not isinstance(value, types):
            kinds = " or ".join(f"{t.__module__.split('.')[0]}.{t.__name__}" for t in types)
            raise self.error(
                key, f"names {name!r}, which holds a {type(value).__name__}, not a {kinds}"
            )
        return value

    def options(
        self, key: str, fn: Callable[..., Any], reserved: tuple[str, ...]
    ) -> dict[str, Any]:
        """Keyword arguments for ``fn``: a mapping whose names ``fn`` accepts, without the
        ``reserved`` ones that the process sets itself."""
        name = getattr(fn, "__qualname__", repr(fn))
        options = self.mapping(key, f"keyword arguments of {name}")
        for option in options:
            if option in reserved:
                raise self.error(key, f"cannot set {option!r}: {self.process} sets it itself")
        try:
            accepted = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            return options
        if any(p.kind is p.VAR_KEYWORD for p in accepted):
            return options
        names = {p.name for p in accepted}
        unknown = sorted(set(options) - names)
        if unknown:
            raise self.error(key, f"has options that {name} does not take: {', '.join(unknown)}")
        return options


def resolve(root: Path, path: str | Path) -> Path:
    """``path`` relative to ``root`` unless it is absolute."""
    full = Path(path).expanduser()
    return full if full.is_absolute() else root / full


def shown(root: Path, path: Path) -> str:
    """``path`` relative to the project root when it is inside it, for log lines."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def fill(
    template: str,
    pipe: Pipe,
    error: Callable[[str, str], ParamError],
    key: str,
    *,
    credentials: bool = True,
    quote: bool = False,
) -> str:
    """``template`` with its ``{confs.KEY}`` and ``{credentials.KEY}`` placeholders filled
    from ``pipe.confs`` and ``pipe.credentials`` (dots walk nested mappings).

    A template that is one placeholder alone gives the value as it is. With ``quote``,
    credential values placed inside a longer template are percent-encoded, so that a
    password holding ``@``, ``:`` or ``/`` keeps a URL valid.
    """
    whole = _PLACEHOLDER.fullmatch(template)

    def value(match: re.Match[str]) -> str:
        section, name = match.group(1), match.group(2)
        if section == "credentials" and not credentials:
            raise error(key, f"cannot use {match.group(0)}: credentials go only in url and env")
        source = pipe.credentials if section == "credentials" else pipe.confs
        found = _lookup(source, name)
        if found is None or isinstance(found, (Mapping, list)):
            raise error(key, f"refers to {match.group(0)}, {_missing(pipe, section, name)}")
        text = str(found)
        if quote and section == "credentials" and whole is None:
            return urllib.parse.quote(text, safe="")
        return text

    return _PLACEHOLDER.sub(value, template)


def _lookup(source: Mapping[str, Any], dotted: str) -> Any:
    node: Any = source
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _missing(pipe: Pipe, section: str, name: str) -> str:
    source = pipe.credentials if section == "credentials" else pipe.confs
    where = (
        f"the credentials file of env {pipe.env!r}"
        if section == "credentials"
        else f"confs.envs.{pipe.env}"
    )
    if not source:
        return f"but {where} is empty or not set"
    known = ", ".join(sorted(_leaves(source))) or "none"
    return f"but {where} has no value {name!r} (it has: {known})"


def _leaves(node: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the scalar values of ``node`` (names only: never the values)."""
    out: list[str] = []
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.extend(_leaves(value, name + "."))
        else:
            out.append(name)
    return out
