"""Where code and data come from: Python's standard library, an installed library (a
``site-packages`` folder), or the project (everything else); and the places whose files
are never a task's input (Python's own files, installed packages, ``/proc``, the store)."""

from __future__ import annotations

import os
import site
import sys
import sysconfig

STDLIB, LIBRARY, PROJECT, NONE = "stdlib", "library", "project", "none"

_SYSTEM = ("/proc/", "/sys/", "/dev/")
_roots: tuple[tuple[str, ...], tuple[str, ...], list[str]] | None = None
extra: tuple[str, ...] = ()
"""Folders whose files are covered otherwise (the store, the history): set per task."""


def folder(path: str) -> str:
    """``path`` made absolute, ending with a separator (a prefix of what it holds)."""
    return os.path.join(os.path.abspath(path), "")


def roots() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The standard library's folders, and the folders libraries are installed in (every
    ``site-packages``/``dist-packages`` folder on ``sys.path``, and the interpreter's)."""
    global _roots
    if _roots is None or _roots[2] != sys.path:
        paths = sysconfig.get_paths()
        stdlib = {paths["stdlib"], paths["platstdlib"]}
        stdlib |= {p for p in sys.path if p.endswith(".zip")}
        installed = {paths["purelib"], paths["platlib"]}
        getsitepackages = getattr(site, "getsitepackages", None)
        if getsitepackages is not None:
            installed |= set(getsitepackages())
        user = getattr(site, "getusersitepackages", None)
        if user is not None:
            installed.add(user())
        installed |= {
            p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")
        }
        _roots = (
            tuple(sorted(folder(p) for p in stdlib if p)),
            tuple(sorted(folder(p) for p in installed if p)),
            list(sys.path),
        )
    return _roots[0], _roots[1]


def origin(path: str) -> str:
    """Where the code at ``path`` comes from: :data:`STDLIB`, :data:`LIBRARY` (installed)
    or :data:`PROJECT`."""
    stdlib, installed = roots()
    if path.startswith(installed):  # before stdlib: site-packages may be inside it
        return LIBRARY
    if path.startswith(stdlib):
        return STDLIB
    return PROJECT


def ignored(path: str) -> bool:
    """Whether a file read at ``path`` is no input of a task: Python's own, an installed
    package's (their versions count instead), the system's (``/proc``), bytecode, the
    store's and the history's (variables count instead)."""
    stdlib, installed = roots()
    return (
        path.startswith(_SYSTEM)
        or path.startswith(installed)
        or path.startswith(stdlib)
        or (bool(extra) and path.startswith(extra))
        or "__pycache__" in path
    )


_origins: dict[str, tuple[object, str]] = {}


def module_origin(name: str) -> str:
    """Where the module ``name`` (imported in this process) comes from; :data:`NONE` for
    a module that is not imported, or has no file (built in, a namespace package)."""
    module = sys.modules.get(name)
    if module is None:
        return NONE
    known = _origins.get(name)
    if known is not None and known[0] is module:
        return known[1]
    file = getattr(module, "__file__", None)
    if not file:
        found = NONE if name not in sys.builtin_module_names else STDLIB
    else:
        found = origin(os.path.abspath(file))
    _origins[name] = (module, found)
    return found
