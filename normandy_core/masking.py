"""Masking credentials (SPEC 11): every credential value a process logs or prints is
written as ``***``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class Masker:
    """Replaces every credential value in a text with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


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
