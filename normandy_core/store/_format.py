"""The file format of one variable: pickle protocol 5 with its buffers written raw.

::

    b"NVAR1\\n"  payload length (u64)  buffer count (u64)  buffer lengths (u64 each)
    payload (the pickle)  then each buffer, aligned on 64 bytes
    b"NVH1"  the content hash of all the above (xxh3-128, 16 bytes)

Out-of-band buffers (NumPy arrays, pandas and Arrow columns) are written as they are in
memory, with no copy into the pickle, and read back as views of the file's bytes: a
memory map on a local disk, one read into memory elsewhere.

The content hash (lineage, SPEC 12; reuse, SPEC 13) is computed as the bytes are written —
xxh3 hashes some 20 GB/s, nothing next to writing them — and read back from the trailer,
never by hashing the file again. A file written before the trailer existed is hashed once
when its hash is asked for.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterator
from typing import Any

import xxhash

MAGIC = b"NVAR1\n"
ALIGN = 64
WRITE_CHUNK = 1 << 20
"""Buffers are handed to the writer 1 MiB at a time. Measured on this project's 2-core
Linux VM (ext4): one write() of 256 MiB took 0.05 s or 0.35-0.68 s, at random, while
1 MiB writes of the same bytes took 0.05-0.10 s every time."""


def encode(name: str, value: Any) -> Encoded:
    """The chunks of ``value``'s file, to be written one after another (then their hash
    and size).

    Pickling happens before the first chunk is yielded, so an unpicklable value raises
    :class:`TypeError` (naming the variable) before anything is written.
    """
    buffers: list[pickle.PickleBuffer] = []
    try:
        payload = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception as exc:
        raise TypeError(
            f"variable {name!r} cannot be stored: {type(exc).__name__}: {exc}; store only "
            "picklable values (data, not open files, connections or locks)"
        ) from exc
    raws = [b.raw() for b in buffers]
    return Encoded(_chunks(payload, raws))


TRAILER = b"NVH1"
_TRAILER_SIZE = len(TRAILER) + 16


class Encoded:
    """The chunks of a value's file, to be iterated once (by the writer); then
    :attr:`hash` (hex) and :attr:`size` (bytes) of what was written."""

    def __init__(self, chunks: Iterator[bytes | memoryview]) -> None:
        self._chunks = chunks
        self.hash = ""
        self.size = 0

    def __iter__(self) -> Iterator[bytes | memoryview]:
        hasher = xxhash.xxh3_128()
        size = 0
        for chunk in self._chunks:
            hasher.update(chunk)
            size += len(chunk)
            yield chunk
        digest = hasher.digest()
        self.hash, self.size = digest.hex(), size + _TRAILER_SIZE
        yield TRAILER + digest


REFERENCE = b"NVREF1\n"
"""A reference file: this, then the path or URL of the variable file it stands for."""


def reference(target: str) -> bytes:
    """The bytes of a reference to the variable file ``target`` (a path or a URL)."""
    return REFERENCE + target.encode("utf-8")


def referenced(head: bytes | memoryview) -> str | None:
    """The path or URL a reference file names, or ``None`` for a variable file."""
    if bytes(head[: len(REFERENCE)]) != REFERENCE:
        return None
    return bytes(head[len(REFERENCE) :]).decode("utf-8")


def content_hash(view: memoryview) -> str:
    """The content hash of a variable file's bytes: from its trailer, else computed."""
    if len(view) >= _TRAILER_SIZE and bytes(view[-_TRAILER_SIZE : -16]) == TRAILER:
        return bytes(view[-16:]).hex()
    return xxhash.xxh3_128(view).hexdigest()


def _chunks(payload: bytes, raws: list[memoryview]) -> Iterator[bytes | memoryview]:
    header = struct.pack(f"<QQ{len(raws)}Q", len(payload), len(raws), *(r.nbytes for r in raws))
    yield MAGIC + header + payload
    offset = len(MAGIC) + len(header) + len(payload)
    for raw in raws:
        pad = -offset % ALIGN
        if pad:
            yield b"\0" * pad
        for start in range(0, raw.nbytes, WRITE_CHUNK):
            yield raw[start : start + WRITE_CHUNK]
        offset += pad + raw.nbytes


def decode(view: memoryview, where: str) -> Any:
    """The value held by a file's bytes; its buffers are views of ``view`` (no copy)."""
    if bytes(view[: len(MAGIC)]) != MAGIC:
        raise ValueError(f"{where} is not a Normandy variable file")
    offset = len(MAGIC)
    payload_len, count = struct.unpack_from("<QQ", view, offset)
    offset += 16
    sizes = struct.unpack_from(f"<{count}Q", view, offset)
    offset += 8 * count
    payload = view[offset : offset + payload_len]
    offset += payload_len
    buffers = []
    for nbytes in sizes:
        offset += -offset % ALIGN
        buffers.append(view[offset : offset + nbytes])
        offset += nbytes
    return pickle.loads(payload, buffers=buffers)
