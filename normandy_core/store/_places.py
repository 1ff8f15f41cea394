"""Where variables live: a :class:`Place` is a file or folder of the store, on a local
file system (:class:`LocalPlace`) or behind ``fsspec`` (``s3://``, ``gcs://``, ``abfs://``,
``memory://``…, see ``_fsspec``).

A place is named by text — a local path or a URL — which is what travels to workers
(:func:`place` turns it back into a place there). Local paths and ``file://`` URLs never
import fsspec and keep the fast path: values are written to a temporary file renamed into
place, and read back memory-mapped.
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import os
import re
import secrets
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from pathlib import Path

_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")
_PLAIN_PATH = re.compile(r"(?:/(?!\.?(?:/|$))[^/]+)+")
"""An absolute path that pathlib would write the same: no empty part (``//``, a trailing
``/``) and no ``.`` part; no URL (it has no ``//``), nothing to expand (it begins with
``/``)."""
_LOCAL_PROTOCOLS = ("file", "local")
_HEAD = 64 + 4096
"""Bytes read to tell a reference file (:func:`~normandy_core.store._format.reference`)
from a variable file."""


class Place(ABC):
    """A file or folder of the store."""

    @abstractmethod
    def __truediv__(self, name: str) -> Place:
        """The place ``name`` inside this folder."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The last part of the place's name."""

    @property
    @abstractmethod
    def parent(self) -> Place:
        """The folder holding this place."""

    @abstractmethod
    def __str__(self) -> str:
        """A local path or a URL: what :func:`place` turns back into this place."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Place) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    @abstractmethod
    def exists(self) -> bool:
        """Whether a file or folder is here."""

    @abstractmethod
    def is_dir(self) -> bool:
        """Whether a folder is here (on object stores: whether anything is below)."""

    @abstractmethod
    def names(self, suffix: str) -> list[str]:
        """The names of the files in this folder ending with ``suffix``, sorted (none if
        the folder does not exist)."""

    @abstractmethod
    def write(self, chunks: Iterable[bytes | memoryview]) -> None:
        """Write a file of ``chunks``; readers never see it half-written (a local file is
        renamed into place; an object store publishes an upload when it is complete)."""

    @abstractmethod
    def read(self) -> memoryview:
        """A file's bytes: writable, copy-on-write where memory-mapped."""

    @abstractmethod
    def mkdir(self) -> None:
        """Create this folder and its parents (a no-op where folders are implicit)."""

    @abstractmethod
    def move_to(self, dest: Place) -> None:
        """Move this file to ``dest`` (same store), replacing what is there."""

    @abstractmethod
    def copy_to(self, dest: Place) -> None:
        """Copy this file to ``dest`` (same store): a hard link where possible."""

    def link_to(self, dest: Place, *, resolved: bool = False) -> None:
        """Make ``dest`` stand for this variable file without copying it (a reused
        variable, SPEC 13): a hard link where the store has them, else a small reference
        file that readers follow (:func:`normandy_core.store._format.reference`).
        ``resolved``: this place is the variable file itself (:meth:`stored` said so), not
        a reference to follow."""
        from normandy_core.store._format import reference

        target = self if resolved else self.resolve()
        dest.write([reference(str(target))])

    def resolve(self) -> Place:
        """The variable file this place stands for: itself, or what its reference names."""
        from normandy_core.store._format import referenced

        head = self.head(_HEAD)
        target = referenced(head)
        return place(target) if target is not None else self

    def stored(self) -> Place | None:
        """The variable file this place stands for (itself, or what its reference names)
        where it is there; ``None`` where this place or the file it names is missing."""
        referenced = _referenced()
        try:
            head = self.head(_HEAD)
        except (FileNotFoundError, IsADirectoryError):
            return None
        target = referenced(head)
        if target is None:
            return self
        found = place(target)
        return found if found.exists() else None

    @abstractmethod
    def head(self, size: int) -> bytes:
        """The first ``size`` bytes of this file (fewer if it is shorter)."""

    @abstractmethod
    def remove(self) -> None:
        """Delete this file or folder and everything below; nothing if it is missing."""


class LocalPlace(Place):
    """A path on a local (or mounted) file system.

    Kept as text: a run joins, links and moves a few paths per task (a reused step of
    2,000 tasks, thousands), and :mod:`pathlib`'s parsing was a fifth of that work. The
    :class:`~pathlib.Path` is made where it is asked for."""

    __slots__ = ("_text", "_path")

    def __init__(self, path: Path | str) -> None:
        self._path: Path | None = path if isinstance(path, Path) else Path(path)
        self._text = str(self._path)  # as pathlib writes it: "a//b/" is "a/b"

    @classmethod
    def _of(cls, text: str) -> LocalPlace:
        """A place of a path already written as pathlib writes it (not parsed again)."""
        made = cls.__new__(cls)
        made._text, made._path = text, None
        return made

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = Path(self._text)
        return self._path

    def __truediv__(self, name: str) -> LocalPlace:
        if not name or "/" in name or name in (".", ".."):  # pathlib's rules, for these
            return LocalPlace(self.path / name)
        base = self._text
        if base == ".":
            return LocalPlace._of(name)
        return LocalPlace._of(base + name if base.endswith("/") else f"{base}/{name}")

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def parent(self) -> LocalPlace:
        return LocalPlace(self.path.parent)

    def __str__(self) -> str:
        return self._text

    def __eq__(self, other: object) -> bool:
        if type(other) is LocalPlace:
            return self._text == other._text
        return isinstance(other, Place) and self._text == str(other)

    def __hash__(self) -> int:
        return hash(self._text)

    def exists(self) -> bool:
        return os.path.exists(self._text)

    def is_dir(self) -> bool:
        return os.path.isdir(self._text)

    def names(self, suffix: str) -> list[str]:
        try:
            entries = os.scandir(self._text)
        except (FileNotFoundError, NotADirectoryError):
            return []
        with entries:
            return sorted(e.name for e in entries if e.name.endswith(suffix) and e.is_file())

    def write(self, chunks: Iterable[bytes | memoryview]) -> None:
        # unique per write: two threads of one task may write one variable at once
        folder, name = os.path.split(self._text)
        tmp = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
        _folder(folder)
        try:
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            os.replace(tmp, self._text)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def read(self) -> memoryview:
        with open(self._text, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if not size:
                return memoryview(b"")
            return memoryview(mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY))

    def mkdir(self) -> None:
        _folder(self._text)

    def move_to(self, dest: Place) -> None:
        target = _local(dest)
        _in_folder(lambda: os.replace(self._text, target), target)

    def copy_to(self, dest: Place) -> None:
        target = _local(dest)
        _folder(os.path.dirname(target))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        try:
            os.link(self._text, target)
        except OSError:  # another file system, or no hard links there
            shutil.copy2(self._text, target)

    def link_to(self, dest: Place, *, resolved: bool = False) -> None:
        source = self if resolved else self.resolve()
        if type(dest) is LocalPlace and type(source) is LocalPlace:
            # the same file: no copy, no second file; one system call where the folder
            # is there and nothing is in the way (a step of 2,000 reused tasks links
            # 2,000 files)
            source_text, target = source._text, dest._text

            def link() -> None:
                try:
                    os.link(source_text, target)
                except FileExistsError:
                    os.unlink(target)
                    os.link(source_text, target)

            try:
                _in_folder(link, target)
                return
            except FileNotFoundError:
                raise
            except OSError:  # another file system, or no hard links there
                pass
        Place.link_to(source, dest, resolved=True)  # a reference to the file itself

    def head(self, size: int) -> bytes:
        # os.read, not open(): a buffered file object costs five times the system calls'
        # own time, and reused tasks read a head each
        fd = os.open(self._text, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = []
            while size > 0:
                chunk = os.read(fd, size)
                if not chunk:
                    break
                chunks.append(chunk)
                size -= len(chunk)
            return b"".join(chunks) if len(chunks) != 1 else chunks[0]
        finally:
            os.close(fd)

    def remove(self) -> None:
        try:  # most often an empty folder (a task's staging, once committed), or nothing
            os.rmdir(self._text)
            return
        except FileNotFoundError:
            return
        except OSError:  # a file, a link, or a folder that is not empty
            pass
        if os.path.isdir(self._text) and not os.path.islink(self._text):
            shutil.rmtree(self._text, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._text)


@functools.cache
def _referenced() -> Callable[[bytes | memoryview], str | None]:
    """:func:`~normandy_core.store._format.referenced`, imported once where first needed
    (the format module imports xxhash; a reused step asks for it once a task)."""
    from normandy_core.store._format import referenced

    return referenced


def _folder(path: str) -> None:
    """Make the folder ``path`` and those above it, where missing (``""``: the current
    folder, there already)."""
    if path:
        os.makedirs(path, exist_ok=True)


def _in_folder(operation: Callable[[], None], target: str) -> None:
    """Run ``operation``, which makes the file ``target``; where it finds no folder to
    make it in, make the folder and run it again. (Folders are most often there: trying
    first spares a reused step's thousands of files a ``makedirs`` each.)"""
    try:
        operation()
    except FileNotFoundError:
        folder = os.path.dirname(target)
        if not folder or os.path.isdir(folder):
            raise  # what is missing is the source
        _folder(folder)
        operation()


def _local_problem(path: Path, setting: str) -> str | None:
    """Why the local folder ``path`` cannot hold a store: it (or a folder above it) is a
    file, or the first existing folder on its way cannot be written."""
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "is" if folder == path else f"is under {folder}, which is"
                return (
                    f"the store {setting!r} ({path}) {what} a file, not a folder: point "
                    "confs.store at a folder, or move the file away"
                )
            if not os.access(folder, os.W_OK | os.X_OK):
                return (
                    f"the store {setting!r} ({path}) cannot be written: {folder} is not "
                    "writable by this user; fix its permissions or point confs.store elsewhere"
                )
            return None
    return None


def _local(dest: Place) -> str:
    if not isinstance(dest, LocalPlace):
        raise TypeError(f"cannot move or copy a local file to {dest}: another store")
    return str(dest)


def read_variable(file: Place) -> memoryview:
    """A variable file's bytes, following a reference file to the file it names."""
    from normandy_core.store._format import referenced

    data = file.read()
    target = referenced(data[:4096]) if len(data) < 4096 else None
    return place(target).read() if target is not None else data


def protocol(text: str) -> str | None:
    """The protocol of a URL (``"s3"`` for ``s3://bucket/x``); ``None`` for a plain path."""
    return text.split("://", 1)[0].lower() if _URL_RE.match(text) else None


def is_local(text: str) -> bool:
    """Whether ``text`` names a place on a local file system (a path or a ``file://`` URL)."""
    return protocol(text) in (None, *_LOCAL_PROTOCOLS)


def place(text: str | Path | Place) -> Place:
    """The place named by a local path or a URL (a relative path is relative to the
    current folder; see :func:`store_root` for the project's store)."""
    if isinstance(text, Place):
        return text
    if isinstance(text, Path):
        return LocalPlace(text)
    if _PLAIN_PATH.fullmatch(text):  # as pathlib writes it: taken as it is (a worker makes
        return LocalPlace._of(text)  # places of the orchestrator's paths for each task)
    proto = protocol(text)
    if proto is None:
        return LocalPlace(Path(text).expanduser())
    if proto in _LOCAL_PROTOCOLS:
        import urllib.parse
        import urllib.request  # 6 ms (ssl, http): only for a file:// store

        parsed = urllib.parse.urlparse(text)
        return LocalPlace(Path(urllib.request.url2pathname(parsed.path)))
    from normandy_core.store._fsspec import FsspecPlace  # only for remote stores

    return FsspecPlace.from_url(text)


def store_root(project_root: Path, setting: str | None) -> Place:
    """The project's store: ``confs.store`` (a URL, or a path relative to the project
    root), by default ``<project>/.normandy``."""
    if not setting:
        return LocalPlace(project_root / ".normandy")
    if protocol(setting) is None:
        return LocalPlace(project_root / Path(setting).expanduser())
    return place(setting)


def store_problem(setting: str, project_root: Path | None = None) -> str | None:
    """Why ``confs.store`` cannot be used on this machine, else ``None``: a local path
    that is a file or cannot be written, a protocol fsspec does not know or whose package
    is missing. Imports fsspec for remote URLs (and does not reach the store there)."""
    proto = protocol(setting)
    if proto is None or proto in _LOCAL_PROTOCOLS:
        root = store_root(project_root, setting) if project_root else place(setting)
        return _local_problem(Path(_local(root)), setting)
    try:
        import fsspec
    except ImportError:
        return (
            f"the store {setting!r} needs fsspec, which is not installed: "
            "pip install 'normandy[dask]' (or pip install fsspec)"
        )
    try:
        fsspec.get_filesystem_class(proto)
    except ImportError as exc:
        return f"the store {setting!r} needs a package that is not installed: {exc}"
    except ValueError:
        return (
            f"unknown protocol {proto!r} in the store {setting!r}; use a path, file://, "
            "or a protocol of fsspec (s3://, gcs://, abfs://…)"
        )
    return None
