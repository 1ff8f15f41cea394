"""A queue from many processes to one reader that no killed writer can block.

``multiprocessing.SimpleQueue`` guards its pipe with a lock shared by the writers: a
worker killed while it writes (at a task's timeout, by the out-of-memory killer) keeps
that lock forever, and every later write — other workers' log records, the
orchestrator's own — waits for it: the run hangs.

Here every message is cut into packets of at most ``PIPE_BUF`` bytes, and each packet is
one ``write()``: POSIX makes such writes to a pipe atomic, so packets of several writers
never interleave and no lock is needed. The reader puts the packets of each message back
together; a writer that dies in the middle of a message only loses that message.

The reader takes everything a read brings at once (:meth:`PacketQueue.get_many`), and on
Linux the pipe is made larger than its default 64 KiB: a chatty writer then runs ahead of
the reader instead of waiting for it after every few lines.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import multiprocessing
import os
import pickle
import secrets
import select
import struct
from collections import deque
from multiprocessing import context
from typing import Any

PACKET = select.PIPE_BUF
_HEADER = struct.Struct("<QQHB")  # pid, message id, payload length, last packet?
_PAYLOAD = PACKET - _HEADER.size
_pack, _dumps, _write, _PROTOCOL = _HEADER.pack, pickle.dumps, os.write, pickle.HIGHEST_PROTOCOL
_PIPE_SIZE = 1 << 20  # Linux's default pipe-max-size for unprivileged processes
_READ = 1 << 20

# message ids: a random start per process, so that a new process reusing a dead one's pid
# never completes the dead one's unfinished message
_ids = itertools.count(secrets.randbits(62))
_pid = os.getpid()


def _forked() -> None:
    global _ids, _pid
    _ids = itertools.count(secrets.randbits(62))
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class PacketQueue:
    """``put`` from any process or thread, ``get`` from one reading thread."""

    def __init__(self, ctx: Any = None) -> None:
        self._reader, self._writer = (ctx or multiprocessing).Pipe(duplex=False)
        _enlarge(self._writer.fileno())
        self._reset_reader()

    def _reset_reader(self) -> None:
        self._fd = self._writer.fileno()
        self._buffer = bytearray()
        self._parts: dict[tuple[int, int], list[bytes]] = {}
        self._ready: deque[Any] = deque()

    def __getstate__(self) -> tuple[Any, Any]:
        context.assert_spawning(self)  # like SimpleQueue: passed to a new process only
        return self._reader, self._writer

    def __setstate__(self, state: tuple[Any, Any]) -> None:
        self._reader, self._writer = state
        self._reset_reader()

    def put(self, obj: Any) -> None:
        data = _dumps(obj, _PROTOCOL)
        size = len(data)
        if size <= _PAYLOAD:  # one packet: most messages
            packet = _pack(_pid, next(_ids), size, True) + data
            if _write(self._fd, packet) != len(packet):  # never, for len <= PIPE_BUF
                raise OSError(f"a log packet of {len(packet)} bytes was written in part")
            return
        msg = next(_ids)
        for start in range(0, size, _PAYLOAD):
            chunk = data[start : start + _PAYLOAD]
            packet = _HEADER.pack(_pid, msg, len(chunk), start + _PAYLOAD >= size) + chunk
            if os.write(self._fd, packet) != len(packet):
                raise OSError(f"a log packet of {len(packet)} bytes was written in part")

    put_nowait = put  # the queue protocol of logging.handlers (a write to a pipe)

    def get(self) -> Any:
        while not self._ready:
            self._read()
        return self._ready.popleft()

    def get_many(self) -> list[Any]:
        """Every message that is complete, waiting for the first one."""
        while not self._ready:
            self._read()
        items = list(self._ready)
        self._ready.clear()
        return items

    def pending(self) -> bool:
        """Whether a message, or part of one, is waiting to be read."""
        return bool(self._ready) or self._reader.poll()

    def empty(self) -> bool:
        return not self.pending()

    def close(self) -> None:
        self._reader.close()
        self._writer.close()

    def _read(self) -> None:
        data = os.read(self._reader.fileno(), _READ)
        if not data:
            raise EOFError("every writer of the queue is gone")
        if self._buffer:
            self._buffer += data
            data = bytes(self._buffer)
            self._buffer.clear()
        offset = self._take_packets(data)
        self._buffer += data[offset:]

    def _take_packets(self, data: bytes) -> int:
        """Decode the whole packets of ``data``; return where the first partial one starts."""
        unpack, header, parts, ready = _HEADER.unpack_from, _HEADER.size, self._parts, self._ready
        offset, total = 0, len(data)
        while total - offset >= header:
            pid, msg, size, last = unpack(data, offset)
            start = offset + header
            end = start + size
            if end > total:
                break
            offset = end
            if last and (pid, msg) not in parts:  # a message of one packet: most of them
                payload = data[start:end]
            else:
                parts.setdefault((pid, msg), []).append(data[start:end])
                if not last:
                    continue
                payload = b"".join(parts.pop((pid, msg)))
            try:
                ready.append(pickle.loads(payload))
            except Exception:  # noqa: BLE001 - a broken message is dropped, not fatal
                continue
        return offset


def _enlarge(fd: int) -> None:
    """Make the pipe hold :data:`_PIPE_SIZE` bytes where the system allows it (Linux)."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setpipe is not None:
        with contextlib.suppress(OSError):  # more than this user may have: keep the default
            fcntl.fcntl(fd, setpipe, _PIPE_SIZE)
