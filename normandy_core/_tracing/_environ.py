"""``os.environ`` that notes the environment variables read (SPEC 13): its class is
patched once per process (see :mod:`._hooks`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any


def patch_environ(
    recording: Callable[[], bool],
    targets: Callable[[], list[Any]],
    written: set[str],
    private: tuple[str, ...],
) -> None:
    """Record reads of ``os.environ`` (and ``os.environb``), through every path Python
    code takes: the class is patched, so that a reference taken before (``from os import
    environ``) records too. ``recording()``: whether to; ``targets()``: who notes what is
    read (each has ``environ``, a dict, and ``listed``); ``written``: where the names set
    by code being traced go (reading them reads no input); ``private``: names never
    noted."""
    environ_type = type(os.environ)
    getitem = environ_type.__getitem__
    setitem = environ_type.__setitem__
    delitem = environ_type.__delitem__
    iterate = environ_type.__iter__
    length = environ_type.__len__
    represent = environ_type.__repr__

    def name_of(mapping: Any, key: Any) -> str | None:
        if mapping is os.environ and isinstance(key, str):
            return key
        if getattr(os, "environb", None) is mapping and isinstance(key, bytes):
            return os.fsdecode(key)
        return None

    def note(mapping: Any, key: Any, value: Any) -> None:
        if not recording():
            return
        name = name_of(mapping, key)
        if name is None or name in written or name in private:
            return
        if isinstance(value, bytes):
            value = os.fsdecode(value)
        for seen in targets():
            seen.environ.setdefault(name, value)

    def listed(mapping: Any) -> None:
        if recording() and name_of(mapping, "") is not None:
            for seen in targets():
                seen.listed = True

    def __getitem__(self: Any, key: Any) -> Any:  # noqa: N807
        try:
            value = getitem(self, key)
        except KeyError:
            note(self, key, None)
            raise
        note(self, key, value)
        return value

    def __setitem__(self: Any, key: Any, value: Any) -> None:  # noqa: N807
        setitem(self, key, value)
        name = name_of(self, key)
        if name is not None and recording():
            written.add(name)

    def __delitem__(self: Any, key: Any) -> None:  # noqa: N807
        delitem(self, key)
        name = name_of(self, key)
        if name is not None and recording():
            written.add(name)

    def __iter__(self: Any) -> Any:  # noqa: N807
        listed(self)
        return iterate(self)

    def __len__(self: Any) -> int:  # noqa: N807
        listed(self)
        return length(self)  # type: ignore[no-any-return]

    def __repr__(self: Any) -> str:  # noqa: N807
        listed(self)
        for key in list(iterate(self)):
            with contextlib.suppress(KeyError):
                __getitem__(self, key)
        return represent(self)  # type: ignore[no-any-return]

    environ_type.__getitem__ = __getitem__  # type: ignore[method-assign]
    environ_type.__setitem__ = __setitem__  # type: ignore[method-assign]
    environ_type.__delitem__ = __delitem__  # type: ignore[method-assign]
    environ_type.__iter__ = __iter__  # type: ignore[method-assign]
    environ_type.__len__ = __len__  # type: ignore[method-assign]
    environ_type.__repr__ = __repr__  # type: ignore[method-assign]
