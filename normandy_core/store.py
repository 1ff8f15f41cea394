"""The variables storage (SPEC 5): values shared between the steps of one flow in one run.

Layout, under ``<project>/.normandy/runs/<run_id>/``::

    vars/<flow>/<name>.nv               committed values of the flow
    staging/<flow>/<task_key>/<name>.nv a running task's writes, not yet committed

A task writes into its own staging folder (from its worker, so big values never travel
through the orchestrator); when it succeeds the orchestrator commits them by renaming,
and when it fails they are deleted. Values are pickled with protocol 5 and their
out-of-band buffers (NumPy, pandas, Arrow) written raw and read back memory-mapped, so
that moving a large array costs about one write and no copy on read.
"""

from __future__ import annotations

import mmap
import os
import pickle
import re
import shutil
import struct
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+\Z")
_MAGIC = b"NVAR1\n"
_ALIGN = 64
_SUFFIX = ".nv"
_MISSING = object()


def file_part(text: str) -> str:
    """``text`` as one file name: readable, reversible (``/`` -> ``%2F``), never ``..``."""
    quoted = urllib.parse.quote(text, safe="[]=.-_,+@")
    return quoted.replace("..", "%2E%2E") if ".." in quoted else quoted


def check_name(name: object) -> str:
    """Return ``name`` if it is a valid variable name, else raise ``ValueError``."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
        raise ValueError(
            f"invalid variable name {name!r}: use letters, digits, '_', '.' and '-' "
            "(no path separators, not '.' or '..')"
        )
    return name


def write_value(path: Path, name: str, value: Any) -> None:
    """Write ``value`` to ``path`` atomically (temporary file, then rename)."""
    buffers: list[pickle.PickleBuffer] = []
    try:
        payload = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception as exc:
        raise TypeError(
            f"variable {name!r} cannot be stored: {type(exc).__name__}: {exc}; store only "
            "picklable values (data, not open files, connections or locks)"
        ) from exc
    raws = [b.raw() for b in buffers]
    header = struct.pack(f"<QQ{len(raws)}Q", len(payload), len(raws), *(r.nbytes for r in raws))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as out:
        out.write(_MAGIC + header + payload)
        for raw in raws:
            out.write(b"\0" * (-out.tell() % _ALIGN))
            out.write(raw)
    os.replace(tmp, path)


def read_value(path: Path) -> Any:
    """Read a value written by :func:`write_value`; its buffers stay memory-mapped,
    copy-on-write: reading costs no copy, and changing a read array in place is allowed
    (the change stays private to the process)."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        data = mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY) if size else b""
    view = memoryview(data)
    if bytes(view[: len(_MAGIC)]) != _MAGIC:
        raise ValueError(f"{path} is not a Normandy variable file")
    offset = len(_MAGIC)
    payload_len, count = struct.unpack_from("<QQ", view, offset)
    offset += 16
    sizes = struct.unpack_from(f"<{count}Q", view, offset)
    offset += 8 * count
    payload = view[offset : offset + payload_len]
    offset += payload_len
    buffers = []
    for nbytes in sizes:
        offset += -offset % _ALIGN
        buffers.append(view[offset : offset + nbytes])
        offset += nbytes
    return pickle.loads(payload, buffers=buffers)


class FlowStore:
    """The committed variables of one flow in one run."""

    def __init__(self, run_dir: Path, flow: str) -> None:
        self.flow = flow
        self.vars_dir = run_dir / "vars" / flow
        self.staging_root = run_dir / "staging" / flow

    def path(self, name: str) -> Path:
        return self.vars_dir / (check_name(name) + _SUFFIX)

    def names(self) -> list[str]:
        if not self.vars_dir.is_dir():
            return []
        return sorted(p.name[: -len(_SUFFIX)] for p in self.vars_dir.glob("*" + _SUFFIX))

    def staging(self, task_key: str) -> Path:
        return self.staging_root / file_part(task_key)

    def staged_names(self, task_key: str) -> list[str]:
        folder = self.staging(task_key)
        if not folder.is_dir():
            return []
        return sorted(p.name[: -len(_SUFFIX)] for p in folder.glob("*" + _SUFFIX))

    def commit(self, task_key: str) -> list[str]:
        """Move a task's staged writes into the flow's variables; return their names."""
        folder = self.staging(task_key)
        names = self.staged_names(task_key)
        self.vars_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            os.replace(folder / (name + _SUFFIX), self.vars_dir / (name + _SUFFIX))
        shutil.rmtree(folder, ignore_errors=True)
        return names

    def discard(self, task_key: str) -> None:
        """Drop a task's staged writes (it failed)."""
        shutil.rmtree(self.staging(task_key), ignore_errors=True)


class Variables:
    """``pipe.vars``: what one task reads and writes.

    Reads see the task's own writes first, then the values committed by earlier steps.
    """

    def __init__(self, vars_dir: Path, staging_dir: Path) -> None:
        self._vars_dir = vars_dir
        self._staging_dir = staging_dir

    def update(self, name: str, value: Any) -> None:
        """Store ``value`` as ``name`` (committed when the task succeeds)."""
        write_value(self._staging_dir / (check_name(name) + _SUFFIX), name, value)

    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name``, or ``default`` where it is missing."""
        value = self._read(check_name(name))
        return default if value is _MISSING else value

    def __getitem__(self, name: str) -> Any:
        value = self._read(check_name(name))
        if value is _MISSING:
            known = ", ".join(self.keys()) or "none"
            raise KeyError(f"no variable {name!r} in this flow (known: {known})")
        return value

    def __setitem__(self, name: str, value: Any) -> None:
        self.update(name, value)

    def __contains__(self, name: object) -> bool:
        return (
            isinstance(name, str)
            and _NAME_RE.match(name) is not None
            and any(
                (folder / (name + _SUFFIX)).is_file()
                for folder in (self._staging_dir, self._vars_dir)
            )
        )

    def keys(self) -> list[str]:
        names: set[str] = set()
        for folder in (self._staging_dir, self._vars_dir):
            if folder.is_dir():
                names.update(p.name[: -len(_SUFFIX)] for p in folder.glob("*" + _SUFFIX))
        return sorted(names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def _read(self, name: str) -> Any:
        for folder in (self._staging_dir, self._vars_dir):
            path = folder / (name + _SUFFIX)
            if path.is_file():
                return read_value(path)
        return _MISSING
