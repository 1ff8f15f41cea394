"""Imports learned (SPEC 20), the worker's side: which modules a task imported, so that
the next run's fork server imports them before the task starts (a writer unpickling a
scikit-learn model paid scikit-learn's import inside its task).

Until the trace of issue 20 records every module a task imports, this is measured here,
in one place: the modules, other than Python's own and Normandy's, present in
``sys.modules`` after the task and not before it — the top-level packages, then their
public submodules (``sklearn.ensemble``: unpickling a random forest imports it, and
``sklearn`` alone does not; deeper ones are imported by these) — and, of those the
orchestrator had imported for it ahead (``TaskCall.modules``), the ones that are there,
so that a module learned once stays learned although its import no longer happens inside
the task.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

__all__ = ["learned", "snapshot"]

_OURS = ("normandy_core", "normandy_cli")
_LIMIT = 200
"""At most this many names per task: a task importing more is not helped by a list."""


def snapshot() -> frozenset[str]:
    """The modules present now, to two levels (taken before a task)."""
    return frozenset(name for name in list(sys.modules) if name.count(".") <= 1)


def learned(before: frozenset[str], prepared: Iterable[str] = ()) -> tuple[str, ...]:
    """The modules the task imported (present now, not in ``before``) and those of
    ``prepared`` that are present: top-level packages first, then their submodules, each
    in the order they were first imported; at most :data:`_LIMIT`."""
    kept = set(prepared)
    found = [
        name
        for name in list(sys.modules)
        if name.count(".") <= 1 and (name not in before or name in kept) and _importable(name)
    ]
    found.sort(key=lambda name: "." in name)  # stable: each level in its order
    return tuple(found[:_LIMIT])


def _importable(name: str) -> bool:
    """A module the fork server can import by name: not Python's own, not Normandy's,
    not private (``_cffi_backend``, ``pkg._impl``: their packages import them), not a
    module made at run time without an import (``cython_runtime``)."""
    top, _, sub = name.partition(".")
    if top.startswith("_") or sub.startswith("_"):
        return False
    if top in sys.stdlib_module_names or top in _OURS:
        return False
    return getattr(sys.modules.get(name), "__spec__", None) is not None
