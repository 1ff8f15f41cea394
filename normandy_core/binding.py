"""Plain functions as processes (SPEC 4 and 12): which arguments a process takes, by name;
where each of its inputs comes from; how its return value becomes its outputs.

A process's parameters named ``pipe``, ``log`` and ``params`` get Normandy's objects; every
other parameter is an *input*: the flow's variable of that name, or the one its entry maps
it to (``inputs: {parameter: variable}``). A parameter with a default is optional. The
return value is stored where the entry's ``outputs`` says.

Pure functions of plain data: the configuration's checks, the data-flow check and the
workers use the same rules.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from normandy_core.errors import ProcessLoadError

RESERVED = ("pipe", "log", "params")
"""The parameters Normandy gives by name; any other parameter is an input."""

VARIABLE_PATTERN = r"[A-Za-z0-9_.-]+"
"""Variable names (SPEC 5): no path separators; ``.`` and ``..`` are refused too."""


@dataclass(frozen=True)
class Parameter:
    """An input of a process: a parameter other than ``pipe``, ``log``, ``params``."""

    name: str
    optional: bool
    """It has a default, used where its variable does not exist."""


@dataclass(frozen=True)
class Signature:
    """What a process takes: which of ``pipe``, ``log``, ``params`` (``reserved``), and its
    inputs, in order."""

    reserved: tuple[str, ...]
    inputs: tuple[Parameter, ...] = ()

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.inputs if p.name == name), None)


def signature_of(fn: Callable[..., Any], name: str = "", target: str = "") -> Signature:
    """The :class:`Signature` of ``fn``; :class:`ProcessLoadError` for a parameter that
    cannot be given by name (positional-only, without a default). ``**kwargs`` receives
    ``pipe``, ``log`` and ``params``; ``*args`` and ``**kwargs`` are never given inputs."""
    label = f"process {name!r}" + (f" ({target})" if target else "")
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return Signature(RESERVED)  # a builtin without a signature: trust it
    reserved: list[str] = []
    inputs: list[Parameter] = []
    for param in parameters:
        if param.kind is param.VAR_KEYWORD:
            reserved.extend(r for r in RESERVED if r not in reserved)
        elif param.kind is param.VAR_POSITIONAL:
            continue
        elif param.kind is param.POSITIONAL_ONLY:
            if param.default is param.empty:
                raise ProcessLoadError(
                    f"{label} has the positional-only parameter {param.name!r}, which "
                    "Normandy cannot give (it passes everything by name): remove the '/' "
                    f"after it, or give {param.name!r} a default"
                )
        elif param.name in RESERVED:
            reserved.append(param.name)
        else:
            inputs.append(Parameter(param.name, param.default is not param.empty))
    return Signature(tuple(reserved), tuple(inputs))


class OutputError(Exception):
    """A process's return value does not fit its entry's ``outputs``."""


@dataclass(frozen=True)
class Outputs:
    """Where a process's return value goes (an entry's ``outputs``).

    ``kind`` is ``one`` (``outputs: NAME``: the value itself), ``sequence`` (``outputs:
    [A, B]``: a tuple or list of that length, unpacked) or ``mapping`` (``outputs: {A: key,
    B: key}``: keys of a returned mapping); ``names`` are the variables, ``keys`` the
    mapping's keys for each."""

    kind: str
    names: tuple[str, ...]
    keys: tuple[Any, ...] = ()

    def describe(self) -> str:
        """As it is written in the configuration."""
        if self.kind == "one":
            return f"outputs: {self.names[0]}"
        if self.kind == "sequence":
            return f"outputs: [{', '.join(self.names)}]"
        pairs = ", ".join(f"{n}: {k}" for n, k in zip(self.names, self.keys))
        return f"outputs: {{{pairs}}}"

    def split(self, value: Any, written: Mapping[str, object] | set[str]) -> dict[str, Any]:
        """The variables ``value`` gives, by name; :class:`OutputError` if it does not fit.

        A process that returns ``None`` having written every declared output through
        ``pipe.vars`` (``written``) fits: its outputs are those writes."""
        if value is None and all(name in written for name in self.names):
            return {}
        if self.kind == "one":
            if value is None:
                raise OutputError(
                    f"it returned None for {self.describe()} (a missing return?); return "
                    f"the value of {self.names[0]!r}, or write it with pipe.vars"
                )
            return {self.names[0]: value}
        if self.kind == "sequence":
            if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
                raise OutputError(
                    f"{self.describe()} takes a tuple or list of {len(self.names)} values; "
                    f"it returned {_shown(value)}"
                )
            if len(value) != len(self.names):
                raise OutputError(
                    f"{self.describe()} takes {len(self.names)} values; it returned {len(value)}"
                )
            return dict(zip(self.names, value))
        if not isinstance(value, Mapping):
            raise OutputError(f"{self.describe()} takes a mapping; it returned {_shown(value)}")
        missing = [k for k in self.keys if k not in value]
        if missing:
            known = ", ".join(map(repr, list(value)[:10])) or "none"
            raise OutputError(
                f"{self.describe()}: the returned mapping has no key "
                f"{', '.join(map(repr, missing))} (its keys: {known})"
            )
        return {name: value[key] for name, key in zip(self.names, self.keys)}


def _shown(value: Any) -> str:
    kind = type(value).__name__
    return "None" if value is None else f"a {kind}"


class MissingInput(Exception):
    """An input whose variable does not exist and that has no default: the process's
    ``parameter``, and the ``variable`` it reads (its entry's ``inputs`` may map it)."""

    def __init__(self, parameter: str, variable: str, why: str = "", message: str = "") -> None:
        self.parameter = parameter
        self.variable = variable
        via = f" (variable {variable!r})" if variable != parameter else ""
        why = why or "no earlier step of the flow wrote it"
        # ``message``: the whole sentence where another owner says it (a dataset's reader)
        super().__init__(message or f"its input {parameter!r}{via} does not exist: {why}")


def input_values(
    signature: Signature,
    mapped: Mapping[str, str],
    read: Callable[[str], Any],
    given: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The inputs to call a process with: ``given`` as they are (a ``map`` task's
    element), ``read(variable)`` for each other one (raising ``KeyError`` where it does
    not exist, with a ``reason`` attribute to say why in other words), the default left
    to Python where an optional input's variable does not exist. :class:`MissingInput`
    for a required one."""
    values: dict[str, Any] = dict(given or {})
    for param in signature.inputs:
        if param.name in values:
            continue
        variable = mapped.get(param.name, param.name)
        try:
            values[param.name] = read(variable)
        except KeyError as exc:
            if param.optional:
                continue
            # a dataset's reader says why in its own words (``reason``)
            message = getattr(exc, "reason", "")
            raise MissingInput(param.name, variable, message=message) from None
    return values
