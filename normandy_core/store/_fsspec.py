"""Places behind fsspec: object stores (``s3://``, ``gcs://``, ``abfs://``…), remote file
systems, and ``memory://`` (one process only: for tests and the ``serial`` executor).

Imported only for a store whose URL is not local. Credentials and options come from fsspec's
own configuration (the usual ``AWS_*``/``GOOGLE_*`` variables, ``~/.config/fsspec``): every
worker needs them as well as the machine running ``normandy``.

Directory listings are never trusted from fsspec's cache: a later step must see what the
orchestrator committed after the cache was filled. Only fsspec's single-path operations are
used: its ``mv``/``copy``/``rm`` read ``[``, ``*`` and ``?`` as glob patterns, and task
names such as ``load[2024]`` hold brackets.
"""

from __future__ import annotations

import contextlib
import ctypes
import posixpath
from collections.abc import Iterable
from typing import Any

import fsspec

from normandy_core.store._format import ALIGN
from normandy_core.store._places import Place


class FsspecPlace(Place):
    def __init__(self, fs: Any, path: str) -> None:
        self.fs = fs
        self.path = path.rstrip("/") or "/"

    @classmethod
    def from_url(cls, url: str) -> FsspecPlace:
        fs, path = fsspec.url_to_fs(url)
        return cls(fs, path)

    def __truediv__(self, name: str) -> FsspecPlace:
        return FsspecPlace(self.fs, posixpath.join(self.path, name))

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def parent(self) -> FsspecPlace:
        return FsspecPlace(self.fs, posixpath.dirname(self.path))

    def __str__(self) -> str:
        return str(self.fs.unstrip_protocol(self.path))

    def _fresh(self, path: str) -> None:
        self.fs.invalidate_cache(path)

    def exists(self) -> bool:
        self._fresh(self.parent.path)
        return bool(self.fs.exists(self.path))

    def is_dir(self) -> bool:
        self._fresh(self.path)
        return bool(self.fs.isdir(self.path))

    def names(self, suffix: str) -> list[str]:
        self._fresh(self.path)
        try:
            entries = self.fs.ls(self.path, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(
            posixpath.basename(e["name"].rstrip("/"))
            for e in entries
            if e.get("type") == "file" and e["name"].endswith(suffix)
        )

    def write(self, chunks: Iterable[bytes | memoryview]) -> None:
        # Written in place: an object store publishes an upload only once it is complete,
        # and a task's staging folder is its own until it is committed or discarded.
        self.fs.makedirs(self.parent.path, exist_ok=True)
        with self.fs.open(self.path, "wb") as out:
            for chunk in chunks:
                out.write(chunk)

    def read(self) -> memoryview:
        with self.fs.open(self.path, "rb") as handle:
            size = getattr(handle, "size", None)
            if size is None:
                size = self.fs.size(self.path)
            view = _aligned(int(size))
            got = 0
            while got < size:
                n = handle.readinto(view[got:])
                if not n:
                    break
                got += n
            return view[:got]

    def head(self, size: int) -> bytes:
        with self.fs.open(self.path, "rb") as handle:
            return bytes(handle.read(size))

    def mkdir(self) -> None:
        self.fs.makedirs(self.path, exist_ok=True)

    def move_to(self, dest: Place) -> None:
        self.copy_to(dest)  # object stores cannot rename: a copy on the server side
        self.fs.rm_file(self.path)

    def copy_to(self, dest: Place) -> None:
        target = _same_store(self, dest)
        self.fs.makedirs(target.parent.path, exist_ok=True)
        self.fs.cp_file(self.path, target.path)

    def remove(self) -> None:
        self._fresh(self.path)
        if self.fs.isfile(self.path):
            self.fs.rm_file(self.path)
            return
        try:
            below = self.fs.find(self.path, withdirs=True, detail=True)
        except FileNotFoundError:
            below = {}
        for path in sorted(below, key=len, reverse=True):  # files and folders, deepest first
            with contextlib.suppress(FileNotFoundError, OSError):
                if below[path].get("type") == "directory":
                    self.fs.rmdir(path)
                else:
                    self.fs.rm_file(path)
        with contextlib.suppress(FileNotFoundError, OSError):
            self.fs.rmdir(self.path)
        self._fresh(self.path)


def _aligned(size: int) -> memoryview:
    """A writable buffer of ``size`` bytes starting on a 64-byte boundary, as the buffers
    of a value file are aligned: arrays read back are writable and aligned as locally."""
    data = bytearray(size + ALIGN)
    start = -ctypes.addressof(ctypes.c_char.from_buffer(data)) % ALIGN
    return memoryview(data)[start : start + size]


def _same_store(source: FsspecPlace, dest: Place) -> FsspecPlace:
    if not isinstance(dest, FsspecPlace) or type(dest.fs) is not type(source.fs):
        raise TypeError(f"cannot move or copy {source} to {dest}: another store")
    return dest
