"""A queue from many processes to one reader that no killed writer can block.

``multiprocessing.SimpleQueue`` guards its pipe with a lock shared by the writers: a
worker killed while it writes (at a task's timeout, by the out-of-memory killer) keeps
that lock forever, and every later write — other workers' log records, the
orchestrator's own — waits for it: the run hangs.

Here every message is cut into packets of at most ``PIPE_BUF`` bytes, and each packet is
one ``write()``: POSIX makes such writes to a pipe atomic, so packets of several writers
never interleave and no lock is needed. The reader puts the packets of each message back
together; a writer that dies in the middle of a message only loses that message.
"""

from __future__ import annotations

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

# message ids: a random start per process, so that a new process reusing a dead one's pid
# never completes the dead one's unfinished message
_ids = itertools.count(secrets.randbits(62))


class PacketQueue:
    """``put`` from any process or thread, ``get`` from one reading thread."""

    def __init__(self, ctx: Any = None) -> None:
        self._reader, self._writer = (ctx or multiprocessing).Pipe(duplex=False)
        self._reset_reader()

    def _reset_reader(self) -> None:
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
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        pid, msg, fd = os.getpid(), next(_ids), self._writer.fileno()
        for start in range(0, max(len(data), 1), _PAYLOAD):
            chunk = data[start : start + _PAYLOAD]
            last = start + _PAYLOAD >= len(data)
            packet = _HEADER.pack(pid, msg, len(chunk), last) + chunk
            if os.write(fd, packet) != len(packet):  # never, for len <= PIPE_BUF
                raise OSError(f"a log packet of {len(packet)} bytes was written in part")

    put_nowait = put  # the queue protocol of logging.handlers (a write to a pipe)

    def get(self) -> Any:
        while not self._ready:
            data = os.read(self._reader.fileno(), 1 << 16)
            if not data:
                raise EOFError("every writer of the queue is gone")
            self._buffer += data
            self._take_packets()
        return self._ready.popleft()

    def empty(self) -> bool:
        return not self._ready and not self._reader.poll()

    def close(self) -> None:
        self._reader.close()
        self._writer.close()

    def _take_packets(self) -> None:
        buffer, offset = self._buffer, 0
        while len(buffer) - offset >= _HEADER.size:
            pid, msg, size, last = _HEADER.unpack_from(buffer, offset)
            end = offset + _HEADER.size + size
            if end > len(buffer):
                break
            parts = self._parts.setdefault((pid, msg), [])
            parts.append(bytes(buffer[offset + _HEADER.size : end]))
            offset = end
            if last:
                del self._parts[(pid, msg)]
                try:
                    self._ready.append(pickle.loads(b"".join(parts)))
                except Exception:  # noqa: BLE001 - a broken message is dropped, not fatal
                    continue
        del buffer[:offset]
