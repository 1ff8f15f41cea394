"""Plain functions as processes (SPEC 4, 12, 20): which arguments a process takes, by
name; where each of its inputs comes from; how its return value becomes its outputs.

A process's parameters named ``pipe``, ``log`` and ``params`` get Normandy's objects; every
other parameter is an *input*: the flow's variable of that name, or what its entry maps it
to in ``inputs`` (a :data:`Source`): another variable (``{table: model_input}``), the
entry's params or one of them (``{parameters: params, test_size:
params.split_options.test_size}``), or several variables (``{dfs: [a, b, c]}``, which a
``*dfs`` parameter receives spread; ``{named: {x: a}}``, a ``**named`` parameter's
keywords). A parameter with a default is optional. In a template's steps, a parameter that
``inputs`` does not map reads the variable of its name in the template's :class:`Scope`.
The return value is stored where the entry's ``outputs`` says.

Pure functions of plain data: the configuration's checks, the data-flow check and the
workers use the same rules.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from normandy_core.errors import ProcessLoadError
from normandy_core.params import KeyPathError, lookup

RESERVED = ("pipe", "log", "params")
"""The parameters Normandy gives by name; any other parameter is an input."""

VARIABLE_PATTERN = r"[A-Za-z0-9_.-]+"
"""Variable names (SPEC 5): no path separators; ``.`` and ``..`` are refused too."""

PARAMS = "params"
"""In ``inputs``, ``params`` is the entry's params and ``params.KEY…`` one of them: a
variable of that name cannot be mapped there."""


@dataclass(frozen=True)
class FromParams:
    """An argument given from the entry's params (``inputs: {test_size:
    params.split_options.test_size}``): the value at ``path``, the whole params where
    ``path`` is empty. The worker reads it from ``pipe.params``, the mapping the process
    gets as ``params``."""

    path: tuple[str, ...] = ()

    def describe(self) -> str:
        """As it is written: ``params.split_options.test_size``."""
        return ".".join((PARAMS, *self.path))


@dataclass(frozen=True)
class Gathered:
    """Several variables given to one parameter: a list (``inputs: {dfs: [a, b, c]}``,
    spread over a ``*dfs`` parameter, else given as a list), or with ``keys`` a mapping
    (``{named: {x: a, y: b}}``, a ``**named`` parameter's keywords, else given as a
    dict)."""

    variables: tuple[str, ...]
    keys: tuple[str, ...] | None = None

    def describe(self) -> Any:
        """As it is written: a list, or a mapping key -> variable."""
        if self.keys is None:
            return list(self.variables)
        return dict(zip(self.keys, self.variables, strict=True))


Source = str | FromParams | Gathered
"""What an entry's ``inputs`` maps a parameter to: a variable's name, the params (or one
of them), or several variables."""


def describe_source(source: Source) -> Any:
    """A source as it is written in ``inputs`` (plain data, for JSON and messages)."""
    return source if isinstance(source, str) else source.describe()


def variables_of(source: Source) -> tuple[str, ...]:
    """The variables a source reads."""
    if isinstance(source, str):
        return (source,)
    if isinstance(source, Gathered):
        return source.variables
    return ()


@dataclass(frozen=True)
class Scope:
    """Where the tasks of a template's use find their variables (SPEC 20): a template
    variable ``name`` is ``names[name]`` where the use maps it (its ``inputs`` and
    ``outputs``), else ``namespace.name``."""

    namespace: str
    names: tuple[tuple[str, str], ...] = ()
    """Template variable -> the flow's variable, as the use maps them."""
    template: str = ""

    def variable(self, name: str) -> str:
        """The flow's variable that the template's ``name`` stands for."""
        for tvar, var in self.names:
            if tvar == name:
                return var
        return f"{self.namespace}.{name}"


def source_of(parameter: str, inputs: Mapping[str, Source], scope: Scope | None) -> Source:
    """What ``parameter`` gets: its mapping in ``inputs``, else the variable of its name
    (in a template, that name's variable in the use's ``scope``)."""
    found = inputs.get(parameter)
    if found is not None:
        return found
    return scope.variable(parameter) if scope is not None else parameter


@dataclass(frozen=True)
class Parameter:
    """An input of a process: a parameter other than ``pipe``, ``log``, ``params``."""

    name: str
    optional: bool
    """It has a default, used where its variable does not exist."""


@dataclass(frozen=True)
class Signature:
    """What a process takes: which of ``pipe``, ``log``, ``params`` (``reserved``), its
    inputs, in order, and the names of its ``*`` and ``**`` parameters (``""``: none)."""

    reserved: tuple[str, ...]
    inputs: tuple[Parameter, ...] = ()
    star: str = ""
    """``dfs`` of ``*dfs``: given the variables an entry maps to it, spread."""
    star_star: str = ""
    """``kw`` of ``**kw``: given ``pipe``, ``log`` and ``params``, and the keywords an
    entry maps to it."""

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.inputs if p.name == name), None)


def signature_of(fn: Callable[..., Any], name: str = "", target: str = "") -> Signature:
    """The :class:`Signature` of ``fn``; :class:`ProcessLoadError` for a parameter that
    cannot be given by name (positional-only, without a default). ``**kwargs`` receives
    ``pipe``, ``log`` and ``params``; ``*args`` and ``**kwargs`` get inputs only where an
    entry maps some to them."""
    label = f"process {name!r}" + (f" ({target})" if target else "")
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return Signature(RESERVED)  # a builtin without a signature: trust it
    reserved: list[str] = []
    inputs: list[Parameter] = []
    star = star_star = ""
    for param in parameters:
        if param.kind is param.VAR_KEYWORD:
            reserved.extend(r for r in RESERVED if r not in reserved)
            star_star = param.name
        elif param.kind is param.VAR_POSITIONAL:
            star = param.name
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
    return Signature(tuple(reserved), tuple(inputs), star, star_star)


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
    ``parameter``, and the ``variable`` it reads (its entry's ``inputs`` may map it);
    or, with ``params``, the key path of params it is given, which is not there."""

    def __init__(
        self,
        parameter: str,
        variable: str,
        why: str = "",
        message: str = "",
        *,
        params: bool = False,
    ) -> None:
        self.parameter = parameter
        self.variable = variable
        if params:
            super().__init__(f"its input {parameter!r} ({variable}) does not exist: {why}")
            return
        via = f" (variable {variable!r})" if variable != parameter else ""
        why = why or "no earlier step of the flow wrote it"
        # ``message``: the whole sentence where another owner says it (a dataset's reader)
        super().__init__(message or f"its input {parameter!r}{via} does not exist: {why}")


class BadVariadic(Exception):
    """What an entry maps to a ``*`` or ``**`` parameter is not a list or a mapping."""


@dataclass
class Arguments:
    """The inputs to call a process with: by name, spread over its ``*`` parameter, and
    the keywords of its ``**`` parameter."""

    named: dict[str, Any] = field(default_factory=dict)
    spread: list[Any] | None = None
    """What its ``*`` parameter gets, where an entry maps something to it."""
    keywords: dict[str, Any] | None = None
    """What its ``**`` parameter gets, where an entry maps something to it (then that
    alone: not ``pipe``, ``log`` and ``params``, which it gets otherwise)."""


def input_values(
    signature: Signature,
    mapped: Mapping[str, Source],
    read: Callable[[str], Any],
    params: Mapping[str, Any] | None = None,
    scope: Scope | None = None,
    given: Mapping[str, Any] | None = None,
) -> Arguments:
    """The inputs to call a process with: ``given`` as they are (a ``map`` task's
    element), ``read(variable)`` for each variable (raising ``KeyError`` where it does not
    exist, with a ``reason`` attribute to say why in other words), ``params`` for what
    comes from params, the default left to Python where an optional input's variable does
    not exist. :class:`MissingInput` for a required one, or a key path that ``params``
    lacks."""
    arguments = Arguments(dict(given or {}))
    for param in signature.inputs:
        if param.name in arguments.named:
            continue
        source = source_of(param.name, mapped, scope)
        try:
            arguments.named[param.name] = _value(param.name, source, read, params)
        except MissingInput:
            if not param.optional or not isinstance(source, str):
                raise
    if signature.star and signature.star in mapped:
        value = _value(signature.star, mapped[signature.star], read, params)
        arguments.spread = _spread(signature.star, value)
    if signature.star_star and signature.star_star in mapped:
        value = _value(signature.star_star, mapped[signature.star_star], read, params)
        arguments.keywords = _keywords(signature.star_star, value)
    return arguments


def call_process(fn: Callable[..., Any], given: Mapping[str, Any], arguments: Arguments) -> Any:
    """Call ``fn`` with ``given`` (its ``pipe``, ``log``, ``params``) and ``arguments``.

    By name, but where its ``*`` parameter gets values: then the parameters before it
    must be given by position (their defaults where they have no value), as Python
    fills a ``*`` parameter only after them."""
    named = {**given, **arguments.named}
    keywords = arguments.keywords or {}
    if not arguments.spread and arguments.keywords is None:
        return fn(**named)
    parameters = inspect.signature(fn).parameters.values()
    if arguments.keywords is not None:  # pipe, log and params only where named
        explicit = {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        named = {k: v for k, v in named.items() if k in explicit}
    if not arguments.spread:
        return fn(**named, **keywords)
    positional: list[Any] = []
    for param in parameters:
        if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            break
        if param.name in named:
            positional.append(named.pop(param.name))
        else:
            positional.append(param.default)  # optional: a required one has its value
    return fn(*positional, *arguments.spread, **named, **keywords)


def _value(
    parameter: str, source: Source, read: Callable[[str], Any], params: Mapping[str, Any] | None
) -> Any:
    if isinstance(source, FromParams):
        try:
            return lookup(params if params is not None else {}, source.path)
        except KeyPathError as exc:
            raise MissingInput(parameter, source.describe(), str(exc), params=True) from None
    if isinstance(source, Gathered):
        values = [_variable(parameter, name, read) for name in source.variables]
        return values if source.keys is None else dict(zip(source.keys, values, strict=True))
    return _variable(parameter, source, read)


def _variable(parameter: str, variable: str, read: Callable[[str], Any]) -> Any:
    try:
        return read(variable)
    except KeyError as exc:  # a dataset's reader says why in its own words (``reason``)
        raise MissingInput(parameter, variable, message=getattr(exc, "reason", "")) from None


def _spread(parameter: str, value: Any) -> list[Any]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise BadVariadic(f"*{parameter} takes a list; it was given {type(value).__name__}")
    return list(value)


def _keywords(parameter: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise BadVariadic(f"**{parameter} takes a mapping; it was given {type(value).__name__}")
    return {str(k): v for k, v in value.items()}
