"""What the process sees, once installed (:func:`install`): every file opened, folder
listed, program started (Python's audit hooks, PEP 578), every module asked for and
loaded (wrappers of the import system), every environment variable read (``os.environ``'s
class) — noted into the :class:`Seen` of whoever is recording: the tasks running now
(:data:`active`), or, while a module is being imported, that module (:func:`imported`).

What a module read and imported while it was imported is kept for the life of the
process: a worker forked from the fork server knows what the process modules it preloaded
read then (a settings file read at import time is a read of every task that uses the
module). Recording costs nothing where nobody records: each hook returns at once.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import stat
import sys
import threading
from collections.abc import Callable
from typing import Any

import xxhash

from normandy_core._tracing._environ import patch_environ
from normandy_core._tracing._places import ignored, roots

Stamp = tuple[int, int, int, int]
"""``(size, mtime_ns, ctime_ns, inode)`` of a file."""


class Seen:
    """What one recorder saw: files read (path -> stamp and content digest, ``None``
    where it did not exist), files written, folders listed (path -> digest of the names,
    ``None`` where it did not exist), environment variables read (name -> value, ``None``:
    unset), whether the environment was listed, modules asked for or loaded, programs
    started."""

    __slots__ = ("environ", "files", "folders", "listed", "modules", "programs", "written")

    def __init__(self) -> None:
        self.files: dict[str, tuple[Stamp, bytes | str] | None] = {}
        self.written: set[str] = set()
        self.folders: dict[str, bytes | None] = {}
        self.environ: dict[str, str | None] = {}
        self.listed = False
        self.modules: set[str] = set()
        self.programs: list[str] = []


active: list[Seen] = []
"""The recordings of the tasks running in this process now."""

_imports: dict[str, Seen] = {}
"""Module -> what its import read and asked for (the modules its own code imported)."""
_order: list[str] = []
"""The modules of :data:`_imports`, in the order their imports began."""

_local = threading.local()
_installed = False
loads = 0
"""How many modules this process has loaded since the hooks were installed (what
depended on the modules loaded so far may be looked at again once it grows)."""
_environ_written: set[str] = set()
"""Environment variables set by traced code of this process (a task's, or a module's when
imported): reading them reads no input."""

PRIVATE_ENVIRON = ("NORMANDY_PRELOAD_SOCKET",)
"""Set in the fork server's environment only (see normandy_core.executors._preload)."""


def imported(module: str) -> Seen | None:
    """What ``module``'s import read and asked for; ``None`` for a module whose import
    this process did not see (imported before :func:`install`, or not at all)."""
    return _imports.get(module)


def modules_imported(since: int = 0) -> list[tuple[str, Seen]]:
    """The modules whose import this process saw (from the ``since``-th on), in the
    order their imports began, with what each read and asked for then."""
    return [(name, _imports[name]) for name in _order[since:]]


def modules_count() -> int:
    return len(_order)


def environ_written() -> frozenset[str]:
    return frozenset(_environ_written)


def _stack() -> list[str]:
    stack: list[str] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def _targets() -> list[Seen]:
    """Who records what happens in this thread now: the module being imported (the
    innermost), else the tasks running."""
    stack = getattr(_local, "stack", None)
    if stack:
        return [_imports[stack[-1]]]
    return active


# -- the audit hook ------------------------------------------------------------------------------


def _audit(event: str, args: tuple[Any, ...]) -> None:
    handler = _HANDLERS.get(event)
    if handler is None or not (active or getattr(_local, "stack", None)):
        return
    if getattr(_local, "busy", False):  # what the hook itself does (hashing a file)
        return
    _local.busy = True
    try:
        handler(args)
    except Exception:  # noqa: BLE001 - a hook must never break the task; noted as a doubt
        for seen in _targets():
            seen.programs.append(f"something Normandy could not trace ({event})")
    finally:
        _local.busy = False


def _path(raw: Any) -> str | None:
    if raw is None or isinstance(raw, int):
        return None
    path = os.fsdecode(os.fspath(raw))
    return os.path.abspath(path)


_CODE = (".py", ".pyc", ".pyd", ".so", ".pth")


def _on_open(args: tuple[Any, ...]) -> None:
    path = _path(args[0])
    if path is None or ignored(path):
        return
    if path.endswith(".pyc") or (path.endswith(_CODE) and getattr(_local, "stack", None)):
        return  # a module's code, read by the import system
    mode, flags = args[1], args[2] if len(args) > 2 else 0
    if isinstance(mode, str):
        reading = "r" in mode or "+" in mode
        writing = any(c in mode for c in "wax+")
    else:
        access = (flags or 0) & os.O_ACCMODE
        reading = access in (os.O_RDONLY, os.O_RDWR)
        writing = access != os.O_RDONLY or bool((flags or 0) & (os.O_CREAT | os.O_TRUNC))
    observed: tuple[Stamp, bytes | str] | None | bool = False
    for seen in _targets():
        if reading and path not in seen.written and path not in seen.files:
            if observed is False:
                observed = observe(path)
            if observed is not True and observed is not False:
                seen.files[path] = observed
        if writing:
            seen.written.add(path)


_digests: dict[tuple[str, Stamp], bytes] = {}
known: dict[tuple[str, Stamp], str] = {}
"""(path, stamp) -> the keyed hash of the file's content, as the task's last trace noted
it: a file whose stamp has not changed since is not read again."""


def observe(path: str) -> tuple[Stamp, bytes | str] | None | bool:
    """A file's stamp and the digest of its content (or its keyed hash, where
    :data:`known`); ``None`` where there is no file; ``True`` where it is not a regular
    file (a device, a pipe, a folder: not data)."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return True
    if not stat.S_ISREG(info.st_mode):
        return True
    stamp = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
    hashed = known.get((path, stamp))
    if hashed is not None:
        return stamp, hashed
    digest = _digests.get((path, stamp))
    if digest is None:
        digest = _digests[(path, stamp)] = file_digest(path)
    return stamp, digest


def file_digest(path: str) -> bytes:
    """The xxh3-128 digest of a file's content (``b""`` where it cannot be read)."""
    hasher = xxhash.xxh3_128()
    try:
        with open(path, "rb") as data:
            while chunk := data.read(1 << 20):
                hasher.update(chunk)
    except OSError:
        return b""
    return hasher.digest()


DISTRIBUTIONS = "*.dist-info"
"""The last part of a folder read that stands for its distributions' metadata folders
only (``/x/site-packages/*.dist-info``): what ``importlib.metadata`` lists every folder
of ``sys.path`` for, to find installed distributions. A task whose library asks for a
version or its plugins depends on which distributions are installed, not on the other
files of those folders (the project's own folder among them: an ``out/`` written there
reran every such task once)."""
_METADATA = (".dist-info", ".egg-info", ".egg")
_LISTERS = (f"importlib{os.sep}metadata{os.sep}", f"importlib_metadata{os.sep}")


def listing(path: str) -> bytes | None:
    """The digest of a folder's entries' names (``None``: no such folder); for a path
    ending in :data:`DISTRIBUTIONS`, of its distributions' metadata folders only."""
    folder, sep, last = path.rpartition(os.sep)
    metadata = bool(sep) and last == DISTRIBUTIONS
    try:
        names = sorted(os.listdir((folder or os.sep) if metadata else path))
    except OSError:
        return None
    if metadata:
        names = [n for n in names if n.lower().endswith(_METADATA)]
    return xxhash.xxh3_128("\0".join(names).encode("utf-8", "surrogateescape")).digest()


def _on_listing(args: tuple[Any, ...]) -> None:
    caller = sys._getframe(2).f_code.co_filename  # the code that lists (2: past the hook)
    if caller.startswith("<frozen importlib"):
        return  # the import system, looking for a module
    raw = args[0] if args else None
    path = os.path.abspath(".") if raw is None else _path(raw)
    if path is None or ignored(path):
        return
    if any(lister in caller for lister in _LISTERS):  # looking for distributions
        path = os.path.join(path, DISTRIBUTIONS)
    targets = [seen for seen in _targets() if path not in seen.folders]
    if targets:
        found = listing(path)
        for seen in targets:
            seen.folders[path] = found


def _on_program(what: str) -> Callable[[tuple[Any, ...]], None]:
    def note(args: tuple[Any, ...]) -> None:
        name = what
        for arg in args:
            if isinstance(arg, (str, bytes, os.PathLike)):
                name = os.path.basename(os.fsdecode(os.fspath(arg))) or what
                break
            if isinstance(arg, (list, tuple)) and arg:
                first = arg[0]
                if isinstance(first, (str, bytes, os.PathLike)):
                    name = os.path.basename(os.fsdecode(os.fspath(first))) or what
                    break
        for seen in _targets():
            seen.programs.append(name)

    return note


_HANDLERS: dict[str, Callable[[tuple[Any, ...]], None]] = {
    "open": _on_open,
    "os.listdir": _on_listing,
    "os.scandir": _on_listing,
    "subprocess.Popen": _on_program("a program"),
    "os.system": _on_program("a shell command"),
    "os.exec": _on_program("a program"),
    "os.posix_spawn": _on_program("a program"),
    "os.spawn": _on_program("a program"),
    "os.fork": _on_program("a child process (os.fork)"),
    "os.forkpty": _on_program("a child process (os.forkpty)"),
}


# -- imports -------------------------------------------------------------------------------------

_original: dict[str, Any] = {}


def _asked(name: str) -> None:
    """``name`` was asked for (imported, loaded or not): by the module being imported in
    this thread, else by the tasks running."""
    for seen in _targets():
        seen.modules.add(name)


def _find_and_load(name: str, import_: Any) -> Any:
    """importlib's loader of a module not imported yet, wrapped: what the module's own
    code reads and imports while it runs is noted as the module's."""
    if active or getattr(_local, "stack", None):
        _asked(name)
    global loads
    stack = _stack()
    if name not in _imports:
        _imports[name] = Seen()
        _order.append(name)
    stack.append(name)
    try:
        return _original["find"](name, import_)
    finally:
        stack.pop()
        loads += 1


def _gcd_import(name: str, package: str | None = None, level: int = 0) -> Any:
    """What ``importlib.import_module`` calls, wrapped: a name asked for, even of a
    module imported already."""
    if active or getattr(_local, "stack", None):
        with contextlib.suppress(Exception):
            _asked(_original["resolve"](name, package, level) if level else name)
    return _original["gcd"](name, package, level)


def _import(
    name: str,
    globals: dict[str, Any] | None = None,  # noqa: A002 - builtins.__import__'s names
    locals: Any = None,  # noqa: A002
    fromlist: Any = (),
    level: int = 0,
) -> Any:
    """``builtins.__import__`` (import statements, ``__import__()``), wrapped: the
    modules asked for, even those imported already; ``from a import b``: ``a.b`` too,
    where it is a module."""
    if active or getattr(_local, "stack", None):
        with contextlib.suppress(Exception):
            absolute = name
            if level:
                package = (globals or {}).get("__package__") or ""
                if not package and globals and "__path__" not in globals:
                    package = str(globals.get("__name__", "")).rpartition(".")[0]
                absolute = _original["resolve"](name, package, level)
            _asked(absolute)
            for item in fromlist or ():
                if isinstance(item, str) and item != "*":
                    _asked(f"{absolute}.{item}?")  # a module only if it is one
    return _original["import"](name, globals, locals, fromlist, level)


def _recording() -> bool:
    """Whether code being traced runs now (not Normandy's own, in a hook)."""
    return bool(active or getattr(_local, "stack", None)) and not getattr(_local, "busy", False)


# -- installing ----------------------------------------------------------------------------------


def install() -> None:
    """Install the hooks in this process, once (an audit hook cannot be removed: it stays,
    returning at once while nobody records)."""
    global _installed
    if _installed:
        return
    _installed = True
    bootstrap = sys.modules.get("_frozen_importlib")
    find = getattr(bootstrap, "_find_and_load", None)
    gcd = getattr(bootstrap, "_gcd_import", None)
    resolve = getattr(bootstrap, "_resolve_name", None)
    if bootstrap is not None and find and gcd and resolve:
        _original.update(find=find, gcd=gcd, resolve=resolve)
        bootstrap._find_and_load = _find_and_load  # type: ignore[attr-defined]
        bootstrap._gcd_import = _gcd_import  # type: ignore[attr-defined]
    if "resolve" in _original:
        _original["import"] = builtins.__import__
        builtins.__import__ = _import  # type: ignore[assignment]
    patch_environ(_recording, _targets, _environ_written, PRIVATE_ENVIRON)
    roots()  # now: looking them up reads the environment
    sys.addaudithook(_audit)


def installed() -> bool:
    return _installed


ZYGOTE = "normandy_core.executors.local._zygote"
"""The module the local engine's fork server runs as (``python -m``)."""


def in_fork_server() -> bool:
    """Whether this process is the local engine's fork server (whose preloaded modules the
    workers forked from it inherit, with what their imports read): it imports the worker
    before any process module, so the hooks are there when those are imported."""
    return ZYGOTE in sys.orig_argv
