"""A task's ``params``: a ``dict`` that notes which keys the task read (SPEC 13), so that
changing a param reruns only the tasks that read it.

Every way Python code reads a dict goes through a method this class overrides: a key
(``params[k]``, ``.get``, ``in``, ``.setdefault``, ``.pop``) is noted as read; anything
that reads the whole (iterating, ``keys``/``values``/``items``, ``len``, ``repr``,
``==``, ``|``, ``copy``, pickling, ``dict(params)``, ``**params``, ``json.dumps``…) notes
*everything* read. Overriding ``__iter__`` is what sends ``dict(params)``, ``{**params}``
and ``f(**params)`` through ``keys()`` rather than straight to the dict's storage.

What no override can see is C code that reads the storage itself (``dict.copy(params)``,
an extension module's ``PyDict_Next``): :mod:`normandy_core._source` finds, in the
process's code, where ``params`` is handed to code Normandy cannot follow, and such a
task counts as having read everything.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any


class Params(dict):  # type: ignore[type-arg]
    """``params`` as a task receives it; :attr:`read` and :attr:`whole` say what it
    read."""

    __slots__ = ("read", "whole")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[Any] = set()
        self.whole = False

    # -- a key -------------------------------------------------------------------------------

    def _key(self, key: Any) -> None:
        try:
            self.read.add(key)
        except TypeError:  # an unhashable key: no such key, but a doubt
            self.whole = True

    def __getitem__(self, key: Any) -> Any:
        self._key(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._key(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._key(key)
        return super().__contains__(key)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._key(key)
        return super().setdefault(key, default)

    def pop(self, key: Any, *default: Any) -> Any:
        self._key(key)
        return super().pop(key, *default)

    # -- the whole ---------------------------------------------------------------------------

    def _all(self) -> None:
        self.whole = True

    def __iter__(self) -> Iterator[Any]:
        self._all()
        return super().__iter__()

    def __reversed__(self) -> Iterator[Any]:
        self._all()
        return super().__reversed__()

    def __len__(self) -> int:
        self._all()
        return super().__len__()

    def keys(self) -> Any:
        self._all()
        return super().keys()

    def values(self) -> Any:
        self._all()
        return super().values()

    def items(self) -> Any:
        self._all()
        return super().items()

    def popitem(self) -> Any:
        self._all()
        return super().popitem()

    def __repr__(self) -> str:
        self._all()
        return super().__repr__()

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        self._all()
        return format(dict.copy(self), spec)

    def __eq__(self, other: object) -> bool:
        self._all()
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        self._all()
        return super().__ne__(other)

    __hash__ = None  # type: ignore[assignment]

    def __or__(self, other: Any) -> Any:
        self._all()
        return dict.copy(self) | other

    def __ror__(self, other: Any) -> Any:
        self._all()
        return other | dict.copy(self)

    def copy(self) -> dict[Any, Any]:
        self._all()
        return dict.copy(self)

    def __copy__(self) -> dict[Any, Any]:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[Any, Any]:
        self._all()
        return copy.deepcopy(dict.copy(self), memo)

    def __reduce_ex__(self, protocol: Any) -> Any:  # pickled as the plain dict it holds
        self._all()
        return (dict, (dict.copy(self),))

    def __reduce__(self) -> Any:
        return self.__reduce_ex__(2)

    def __sizeof__(self) -> int:
        return super().__sizeof__()
