"""Where a dataset's file lives: a local path (no fsspec: checking a project stays fast)
or any fsspec URL (``s3://``, ``gcs://``, ``memory://``…), behind one small interface of
the few calls datasets make — fsspec's own names and meanings (``info``, ``open``, ``mv``,
``rm``, ``makedirs``, ``ls``)."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import xxhash

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")
_LOCAL = ("file", "local")
_RENAMES = ("file", "local", "memory", "sftp", "ssh", "hdfs", "webhdfs", "arrow_hdfs")
"""Protocols whose file systems rename a file in one step: a file is written under a
temporary name there, then renamed. Object stores (``s3``, ``gcs``, ``abfs``…) publish an
upload only once it is complete: it is written in place."""
_CHUNK = 1 << 20


def protocol(path: str) -> str | None:
    """``"s3"`` for ``s3://bucket/x``; ``None`` for a plain path."""
    return path.split("://", 1)[0].lower() if _URL.match(path) else None


def is_url(path: str) -> bool:
    """Whether ``path`` is a URL of a file system other than the local one."""
    return protocol(path) not in (None, *_LOCAL)


def resolve(path: str, root: Path | str) -> str:
    """``path`` as a dataset's file: a URL as it is, a local path absolute (relative ones
    are relative to the project ``root``)."""
    proto = protocol(path)
    if proto is not None and proto not in _LOCAL:
        return path
    if proto is not None:
        path = path.split("://", 1)[1]
    full = Path(path).expanduser()
    return str(full if full.is_absolute() else Path(root) / full)


def join(path: str, *parts: str) -> str:
    """``path/part/…`` for a local path or a URL."""
    return "/".join([path.rstrip("/"), *parts]) if is_url(path) else str(Path(path, *parts))


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] if is_url(path) else Path(path).name


class Files:
    """The file system of one dataset: fsspec's calls, on local paths without fsspec."""

    renames = True
    """Whether a file is renamed in one step (else written in place: an object store)."""
    cheap = True
    """Whether reading a file again costs little (local, in memory): where a content hash
    is computed besides the stamp."""

    def info(self, path: str) -> dict[str, Any]:
        """``size``, ``type`` (``file``, ``directory``) and ``mtime``;
        ``FileNotFoundError`` where nothing is."""
        st = os.stat(path)
        kind = "directory" if os.path.isdir(path) else "file"
        # ``change``: what tells a local file's changes where its size and modification
        # time do not (a file rewritten with its modification time put back): its inode
        # and change time, which no one sets back
        change = f"{st.st_ino}:{st.st_ctime_ns}:{st.st_mtime_ns}"
        return {"name": path, "size": st.st_size, "type": kind, "mtime": st.st_mtime,
                "change": change}  # fmt: skip

    def open(self, path: str, mode: str = "rb") -> IO[Any]:
        return open(path, mode)  # noqa: SIM115 - the caller closes it

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def mv(self, source: str, dest: str) -> None:
        os.replace(source, dest)

    def rm(self, path: str) -> None:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def ls(self, path: str) -> list[str]:
        """The names (not paths) of what is in the folder ``path``; none if it is missing."""
        try:
            return sorted(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def parent(self, path: str) -> str:
        return str(Path(path).parent)

    def temporary(self, path: str) -> str:
        """A name beside ``path`` to write to before renaming it into place: hidden, and
        ending like ``path`` (libraries that guess a format from the suffix guess right)."""
        name = basename(path)
        return join(self.parent(path), f".tmp-{os.getpid()}-{secrets.token_hex(4)}-{name}")


class FsspecFiles(Files):
    """A file system of fsspec (``s3://``, ``memory://``…)."""

    def __init__(self, fs: Any, proto: str) -> None:
        self.fs = fs
        self.renames = proto in _RENAMES
        self.cheap = proto == "memory"

    def info(self, path: str) -> dict[str, Any]:
        return dict(self.fs.info(path))

    def open(self, path: str, mode: str = "rb") -> IO[Any]:
        return self.fs.open(path, mode)  # type: ignore[no-any-return]

    def makedirs(self, path: str) -> None:
        self.fs.makedirs(path, exist_ok=True)

    def mv(self, source: str, dest: str) -> None:
        self.fs.mv(source, dest)

    def rm(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(path, recursive=True)

    def ls(self, path: str) -> list[str]:
        try:
            found = self.fs.ls(path, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted({str(p).rstrip("/").rsplit("/", 1)[-1] for p in found})

    def parent(self, path: str) -> str:
        return str(self.fs._parent(path))


def files_for(path: str, options: Mapping[str, Any] | None = None) -> tuple[Files, str]:
    """The file system of ``path`` (a local path or a URL, see :func:`resolve`) and the
    path on it. ``options``: fsspec's storage options (``fs_args``, credentials)."""
    proto = protocol(path)
    if proto is None or proto in _LOCAL:
        return Files(), path.split("://", 1)[1] if proto else path
    import fsspec  # only for URLs: checking a project of local files stays fast

    fs, inner = fsspec.core.url_to_fs(path, **dict(options or {}))
    return FsspecFiles(fs, proto), inner


def file_hash(files: Files, path: str) -> str:
    """The content hash of a file (xxh3-128, as variables'), read in 1 MiB chunks."""
    digest = xxhash.xxh3_128()
    with files.open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modified", "created")
_ETAG_KEYS = ("ETag", "etag", "md5Hash", "md5", "checksum", "content_md5", "change")


def mtime_of(info: Mapping[str, Any]) -> float | None:
    """The modification time in ``fs.info()``'s answer, as seconds since the epoch."""
    for key in _MTIME_KEYS:
        value = info.get(key)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def etag_of(info: Mapping[str, Any]) -> str | None:
    """The entity tag (or checksum) in ``fs.info()``'s answer, where the store gives one;
    for a local file, its inode, change and modification times (``change``)."""
    for key in _ETAG_KEYS:
        value = info.get(key)
        if value:
            return str(value).strip('"')
    return None
