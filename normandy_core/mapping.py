"""Dynamic fan-out (SPEC 19): a ``map`` entry runs once per element of a variable that an
earlier step wrote — a list, or a mapping — and its outputs are collected, in order.

Pure functions of plain data: which elements a value has and what each is called
(:func:`elements_of`), and what the outputs of the elements make together
(:func:`collect`). The scheduler reads the variable, makes the elements' tasks
(:func:`normandy_core.plan.element_task`) and writes what is collected.

**Element keys.** An element's task is named ``task[KEY]`` and its success is looked up
by that name in a later run, so a KEY must stay the same when the list around it changes:

- a list of short scalars (strings, numbers of at most 64 characters as text, without
  brackets or control characters), distinct as text, is keyed by its values — like
  ``iter_param``: appending, inserting or removing a file name runs the task of that file
  only;
- a mapping whose keys are such scalars is keyed by its keys;
- anything else (dicts, tuples, long strings, duplicates) by position (``0``, ``1``…):
  appending an element still runs one task, but an insertion shifts the positions after
  it, and the elements whose content moved to another position run again.

A task's fingerprint holds its element's content hash (not the whole list's), read as
``VARIABLE[KEY]``: an element that did not change is reused whatever happened to the
others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from normandy_core.binding import Outputs
from normandy_core.config import MapSpec
from normandy_core.plan import Element
from normandy_core.store._format import encode

SHORT_KEY = 64
"""The longest scalar (as text) used as an element's key."""


class MapError(Exception):
    """The variable a ``map`` entry maps over cannot be mapped (its task fails with it)."""


def elements_of(
    value: Any, spec: MapSpec, parent: str, secrets: Sequence[str] = ()
) -> list[Element]:
    """The elements of ``value`` (the variable ``spec.variable``) for the mapped task
    ``parent``: their keys, positions, values and content hashes. :class:`MapError` where
    ``value`` is not a list or a mapping, or has more than ``spec.limit`` elements.
    ``secrets``: the run's credential values; where a key would hold one, the elements
    are named by their positions (a task's name is shown and stored everywhere, SPEC 11)."""
    if isinstance(value, Mapping):
        keys_of: list[Any] = list(value)
        items = [value[k] for k in keys_of]
    elif isinstance(value, (list, tuple)):
        keys_of, items = list(value), list(value)
    else:
        raise MapError(
            f"map: {spec.variable} is {_kind(value)}; map over a list (one task per element) "
            "or a mapping (one task per key)"
        )
    if len(items) > spec.limit:
        raise MapError(
            f"map: {spec.variable} has {len(items):,} elements, more than max_map "
            f"({spec.limit:,}); raise max_map on the entry if that many tasks are meant, or "
            "map over fewer (group the elements in batches)"
        )
    keys = _keys(keys_of, secrets)
    found = []
    for position, (key, item) in enumerate(zip(keys, items, strict=True)):
        encoded = encode(f"{spec.variable}[{key}]", item)
        for _ in encoded:  # hashed as the store would, without writing it
            pass
        found.append(
            Element(parent, spec.variable, key, position, item, encoded.hash, encoded.size)
        )
    return found


def is_mapping(value: Any) -> bool:
    """Whether the outputs of a map over ``value`` are collected into a mapping."""
    return isinstance(value, Mapping)


def collect(
    outputs: Outputs,
    value: Any,
    done: Sequence[tuple[Element, Mapping[str, Any]]],
) -> dict[str, Any]:
    """Each of ``outputs``' variables, collected from the elements ``done`` (in order:
    each element with its outputs, by the parent's output name): a list over a list, a
    mapping (by the original keys) over a mapping. Elements that failed (tolerated) are
    not in ``done``: they are left out."""
    collected: dict[str, Any] = {}
    if is_mapping(value):
        originals = list(value)
        for name in outputs.names:
            collected[name] = {originals[e.position]: got[name] for e, got in done}
    else:
        for name in outputs.names:
            collected[name] = [got[name] for _, got in done]
    return collected


def _keys(values: list[Any], secrets: Sequence[str] = ()) -> list[str]:
    """Each element's key: the values as text where all are short scalars, distinct as
    text, and none holds a credential's value; else positions."""
    texts = [_short(v) for v in values]
    keys = [t for t in texts if t is not None]
    if (
        len(keys) == len(texts)
        and len(set(keys)) == len(keys)
        and not any(secret in key for key in keys for secret in secrets if secret)
    ):
        return keys
    return [str(i) for i in range(len(values))]


def _short(value: Any) -> str | None:
    if not isinstance(value, (str, int, float)):  # bool is an int
        return None
    text = str(value)
    if not 0 < len(text) <= SHORT_KEY or not text.isprintable() or "[" in text or "]" in text:
        return None
    return text


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    kind = f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
