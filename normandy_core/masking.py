"""Masking credentials (SPEC 11): every credential value a process logs or prints is
written as ``***``.

A value is masked in every form it takes in text: as it is; as it appears in the
``repr`` of a string or of a container holding it (``%r``, a dict: ``\\n``, ``\\\\`` and
quotes escaped); in JSON. A value of several lines (a PEM key) is masked whole, and each
of its lines is masked on its own too: printed text reaches the logs a line at a time.

Only what processes produce is masked, never Python's or Normandy's own words: a
traceback keeps its framing (``Traceback (most recent call last):``, ``File "…", line N,
in f``, the exception's type, ``During handling of the above exception…``) and has its
messages and source lines masked (:meth:`Masker.format_exception`): a credential as short
as ``tion`` must not turn ``exception`` into ``excep***``.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

MIN_LENGTH = 3
"""Shorter values (and lines of a value) are not masked: they would mask common text."""


class Masker:
    """Replaces every credential value, in each of its forms, in a text with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in secrets:
            if len(value.strip()) < MIN_LENGTH:
                continue
            forms.update(_forms(value))
            if "\n" in value or "\r" in value:
                for line in value.splitlines():
                    if len(line.strip()) >= MIN_LENGTH:
                        forms.update(_forms(line), _forms(line.strip()))
        self.secrets = sorted(forms, key=len, reverse=True)
        """Every form of every value, longest first (a value inside a longer one is
        masked after it)."""

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def format_exception(self, exc: BaseException, tb: TracebackType | None = None) -> str:
        """The traceback of ``exc`` (from ``tb``, by default its own) as Python prints it,
        with what the process wrote masked: the messages and notes of the exception and
        of its causes and contexts, and the source lines of their frames."""
        if tb is None:
            tb = exc.__traceback__
        shown = traceback.TracebackException(type(exc), exc, tb, compact=True)
        _mask_parts(shown, exc, self, set())
        return "".join(shown.format())


def _forms(value: str) -> set[str]:
    """``value`` as it is, in the ``repr`` of a string holding it (whichever quotes that
    string is shown in), its ``ascii`` and in JSON."""
    return {
        value,
        repr(value)[1:-1],
        repr(value + '"')[1:-2],  # in a string holding both quotes: ' escaped
        ascii(value)[1:-1],
        ascii(value + '"')[1:-2],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }


def _mask_parts(
    shown: traceback.TracebackException, exc: BaseException, masker: Masker, seen: set[int]
) -> None:
    """Mask the messages and source lines of ``shown`` (the traceback of ``exc``) and of
    every exception chained to it, in place; keep the rest as Python writes it."""
    if id(shown) in seen:
        return
    seen.add(id(shown))
    shown.stack = _MaskedStack(shown.stack, masker)
    kind = type(exc).__qualname__
    if type(exc).__module__ not in ("__main__", "builtins"):
        kind = f"{type(exc).__module__}.{kind}"
    suffix = ""
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, tuple) and isinstance(getattr(exc, "message", None), str):
        suffix = f" ({len(inner)} sub-exception{'s' * (len(inner) != 1)})"  # Python's words
    original = shown.format_exception_only
    # an instance attribute: format() looks it up on each exception of the chain
    shown.format_exception_only = lambda **kwargs: _masked_message(  # type: ignore[method-assign,assignment]
        original(**kwargs), kind, suffix, masker
    )
    for attribute in ("__cause__", "__context__"):
        chained = getattr(shown, attribute, None)
        if chained is not None and getattr(exc, attribute, None) is not None:
            _mask_parts(chained, getattr(exc, attribute), masker, seen)
    for inner, inner_exc in zip(
        getattr(shown, "exceptions", None) or (), getattr(exc, "exceptions", None) or ()
    ):
        _mask_parts(inner, inner_exc, masker, seen)


def _masked_message(
    chunks: Iterable[str], kind: str, suffix: str, masker: Masker
) -> Iterator[str]:
    """``TypeName: message`` with the message masked (an exception group's count of
    sub-exceptions, ``suffix``, as it is); the notes and a syntax error's text masked;
    the type's name and a syntax error's ``File`` line as they are."""
    for chunk in chunks:
        if chunk.startswith(f"{kind}: "):
            message = chunk[len(kind) + 2 :]
            end = f"{suffix}\n"
            if suffix and message.endswith(end):
                yield f"{kind}: {masker(message[: -len(end)])}{end}"
            else:
                yield f"{kind}: {masker(message)}"
        elif chunk == f"{kind}\n" or chunk.lstrip().startswith('File "'):
            yield chunk
        else:
            yield masker(chunk)


class _MaskedStack(traceback.StackSummary):
    """A stack whose frames show their ``File "…", line N, in f`` line as it is and the
    rest (the source lines, the values of locals) masked."""

    def __init__(self, frames: Iterable[Any], masker: Masker) -> None:
        super().__init__(frames)
        self.masker = masker

    def format(self, **kwargs: Any) -> list[str]:
        out = []
        for chunk in super().format(**kwargs):
            head, newline, rest = chunk.partition("\n")
            if head.lstrip().startswith('File "') and rest:
                masked = self.masker(rest)
                if masked != rest:  # the carets under a changed line would point wrong
                    masked = "".join(
                        line
                        for line in masked.splitlines(keepends=True)
                        if line.strip(" ^~\n")
                    )
                chunk = head + newline + masked
            out.append(chunk)
        return out


def secret_values(credentials: Mapping[str, Any]) -> tuple[str, ...]:
    """Every leaf value of a credentials mapping, as text."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)
        elif node is not None and not isinstance(node, bool):
            out.append(str(node))

    walk(credentials)
    return tuple(out)


def mask_values(value: Any, masker: Masker) -> Any:
    """A copy of ``value`` (params: mappings, lists, scalars) in which every text holding
    a credential value is masked, for where Normandy shows or stores params (SPEC 11)."""
    if isinstance(value, Mapping):
        return {k: mask_values(v, masker) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_values(v, masker) for v in value]
    if isinstance(value, str):
        return masker(value)
    if value is not None and not isinstance(value, bool) and masker.secrets:
        text = str(value)  # a number used as a secret (a PIN) is masked too
        return masker(text) if masker(text) != text else value
    return value
