"""The code of the project under test as it is now, for every ``run_process`` call.

Python imports a module once per process, and a pytest session is one process. Two
things then go wrong silently without this module:

- two projects with a package of the same name (``projA/src/hp``, ``projB/src/hp``)
  tested in one session: projB's tests would run projA's ``hp``, imported first;
- a process module edited during the session (a test that writes one, a long session
  while the code is worked on): the old code would keep running.

Before each call, :func:`refresh` looks at the modules of the project's folders (its
root and ``src/``): a module of the process's package imported from elsewhere, or one
whose file changed since it was imported, has the project's modules imported again
(removed from ``sys.modules``, their functions forgotten by the workers' cache, stale
bytecode deleted). After each call, :func:`remember` notes what the project's modules
are, for the next call to compare with.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["refresh", "remember"]

_Stamp = bytes
_stamps: dict[str, tuple[str, _Stamp]] = {}
"""Module name -> (its file, a hash of its content) when last seen imported: a file's
time may not change between two writes a few milliseconds apart."""


def refresh(module: str, folders: Sequence[Path]) -> list[str]:
    """Make the next import of ``module`` (a process's, of the project whose code lives
    in ``folders``) give the project's code as it is now; return what was imported again
    and why, one sentence each (nothing where nothing had to be)."""
    roots = _roots(folders)
    for folder in reversed(roots):  # the project's folders first on the path, as in a run
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
        sys.path.insert(0, folder)
    told: list[str] = []
    top = module.partition(".")[0]
    loaded = sys.modules.get(top)
    if loaded is not None and not _under(_where(loaded), roots) and _found_in(top, roots):
        family = [name for name in sys.modules if name == top or name.startswith(top + ".")]
        _forget(family)
        told.append(
            f"{top} was imported from {_where(loaded)}, not from this project: "
            "imported again from the project's folders"
        )
    changed = [
        name
        for name, (file, stamp) in list(_stamps.items())
        if name in sys.modules and _under(file, roots) and _stamp(file) != stamp
    ]
    if changed:
        ours = [name for name in list(sys.modules) if _under(_where(sys.modules[name]), roots)]
        _forget(ours)
        told.append(f"{', '.join(sorted(changed))} changed since imported: imported again")
    return told


def remember(folders: Sequence[Path]) -> None:
    """Note the project's modules imported now, and their files' stamps."""
    roots = _roots(folders)
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and name not in _stamps and _under(file, roots):
            stamp = _stamp(file)
            if stamp is not None:
                _stamps[name] = (file, stamp)


def _forget(names: Iterable[str]) -> None:
    """Out of ``sys.modules``, the workers' cache of functions and the bytecode cache:
    the next import reads the source."""
    from normandy_core.worker import forget_imported

    names = list(names)
    for name in names:
        module = sys.modules.pop(name, None)
        _stamps.pop(name, None)
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and file.endswith(".py"):
            # an edit within the second the bytecode was written, of the same size,
            # would load the old code from it
            with contextlib.suppress(OSError, ValueError, NotImplementedError):
                os.remove(importlib.util.cache_from_source(file))
    forget_imported(names)
    importlib.invalidate_caches()


def _roots(folders: Sequence[Path]) -> list[str]:
    return [str(f) for f in folders if f.is_dir()]


def _where(module: object) -> str:
    """Where a module was imported from: its file, or its package's first folder."""
    file = getattr(module, "__file__", None)
    if isinstance(file, str):
        return file
    path = getattr(module, "__path__", None)
    return str(next(iter(path), "")) if path is not None else ""


def _under(path: str, roots: Sequence[str]) -> bool:
    return bool(path) and any(path.startswith(root + os.sep) for root in roots)


def _found_in(top: str, roots: Sequence[str]) -> bool:
    """Whether ``top`` is a module or package of the project's own folders."""
    return any(
        os.path.isfile(os.path.join(root, top + ".py"))
        or os.path.isfile(os.path.join(root, top, "__init__.py"))
        for root in roots
    )


def _stamp(file: str) -> _Stamp | None:
    try:
        with open(file, "rb") as source:
            return hashlib.blake2b(source.read(), digest_size=16).digest()
    except OSError:
        return None
