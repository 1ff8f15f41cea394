"""A queue from many processes to one reader that no killed writer can block.

``multiprocessing.SimpleQueue`` guards its pipe with a lock shared by the writers: a
worker killed while it writes (at a task's timeout, by the out-of-memory killer) keeps
that lock forever, and every later write — other workers' log records, the
orchestrator's own — waits for it: the run hangs.

Here every message is cut into packets of at most ``PIPE_BUF`` bytes, and each packet is
one ``write()``: POSIX makes such writes to a pipe atomic, so packets of several writers
never interleave and no lock is needed. The reader puts the packets of each message back
together; a writer that dies in the middle of a message only loses that message.

Messages are pickled, but for the one a chatty task sends for every line
(:meth:`PacketQueue.put_text`): its constant part (which task, which level) is pickled
once per writer as a *head*, and each message is then the head's number, a time and the
text, as UTF-8. The reader gives back ``(*head, time, [texts])``.

The reader takes everything a read brings at once (:meth:`PacketQueue.get_many`), and on
Linux the pipe is made larger than its default 64 KiB: a chatty writer then runs ahead of
the reader instead of waiting for it after every few lines.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import pickle
import secrets
import select
import struct
from collections import deque
from typing import Any

PACKET = select.PIPE_BUF
_HEADER = struct.Struct("<QQHB")  # pid, message id, payload length, flags
_LAST, _TEXT, _LINES = 1, 2, 4  # flags: the message's last packet; a text (put_text);
# a text of lines (its messages are its lines; else it is one message)
_WAKE = 8  # an empty packet that only wakes the reader (put_local)
_TEXT_HEAD = struct.Struct("<Qd")  # the head's number, the time
_PAYLOAD = PACKET - _HEADER.size
_PIPE_SIZE = 1 << 20  # Linux's default pipe-max-size for unprivileged processes
_READ = 1 << 20
_pack, _dumps, _write, _PROTOCOL = _HEADER.pack, pickle.dumps, os.write, pickle.HIGHEST_PROTOCOL
_HEAD = "normandy.packets.head"  # the tag of a head's pickled declaration


# message ids: a random start per process, so that a new process reusing a dead one's pid
# never completes the dead one's unfinished message (nor uses its heads)
_ids = itertools.count(secrets.randbits(62))
_pid = os.getpid()


def _forked() -> None:
    global _ids, _pid
    _ids = itertools.count(secrets.randbits(62))
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class PacketQueue:
    """``put`` from any process or thread, ``get`` from one reading thread.

    A pipe's two descriptors: a process that writes to the queue gets a copy of
    :attr:`writer` (passed as a descriptor, see :mod:`normandy_core.executors.local`)
    and makes its own queue of it with :meth:`writing_to`."""

    def __init__(self, *, _writer: int | None = None) -> None:
        if _writer is None:
            self.reader, self.writer = os.pipe()
            _enlarge(self.writer)
        else:
            self.reader, self.writer = -1, _writer
        self._fd = self.writer
        self._buffer = bytearray()
        self._parts: dict[tuple[int, int], list[bytes]] = {}
        self._ready: deque[Any] = deque()
        self._local: deque[Any] = deque()  # put_local's, not yet taken
        self._waiting = False  # the reader is (about to be) blocked on the pipe
        self._sent_heads: dict[tuple[Any, ...], int] = {}  # writer: head -> its number
        self._sent_by = _pid
        self._heads: dict[tuple[int, int], tuple[Any, ...]] = {}  # reader: (pid, n) -> head
        self._poll = select.poll()
        if self.reader >= 0:
            self._poll.register(self.reader, select.POLLIN)

    @classmethod
    def writing_to(cls, fd: int) -> PacketQueue:
        """The queue of another process, in a process given its writing descriptor."""
        return cls(_writer=fd)

    # -- writing -------------------------------------------------------------------------------

    def put(self, obj: Any) -> None:
        self._send(_dumps(obj, _PROTOCOL), 0)

    put_nowait = put  # the queue protocol of logging.handlers (a write to a pipe)

    def put_local(self, obj: Any) -> None:
        """Put ``obj`` from a thread of the reading process (the orchestrator's own
        records): kept as it is, neither pickled nor written to the pipe and read back (a
        run's few records per task cost ~0.2 ms a task that way). The reader is woken by
        an empty packet only where it waits on the pipe; it takes these after what the
        pipe held when they were put (a task's lines come before its end's record)."""
        self._local.append(obj)
        if self._waiting:
            self._waiting = False
            self._send(b"", _WAKE)

    def put_text(
        self, head: tuple[Any, ...], created: float, text: str, lines: bool = False
    ) -> None:
        """Put ``(*head, created, [text])`` — with ``lines``, ``(*head, created,
        text.split("\\n"))`` — without pickling it: ``head`` (a tuple of plain values) is
        sent once, then only its number."""
        if self._sent_by != _pid:  # a forked copy: the reader knows none of our heads
            self._sent_heads, self._sent_by = {}, _pid
        number = self._sent_heads.get(head)
        if number is None:
            number = next(_ids)
            self.put((_HEAD, number, head))
            self._sent_heads[head] = number  # only now: another thread may use it
        data = _TEXT_HEAD.pack(number, created) + text.encode("utf-8", "surrogatepass")
        self._send(data, _TEXT | _LINES if lines else _TEXT)

    def _send(self, data: bytes, flags: int) -> None:
        size = len(data)
        if size <= _PAYLOAD:  # one packet: most messages
            packet = _pack(_pid, next(_ids), size, flags | _LAST) + data
            if _write(self._fd, packet) != len(packet):  # never, for len <= PIPE_BUF
                raise OSError(f"a log packet of {len(packet)} bytes was written in part")
            return
        msg = next(_ids)
        for start in range(0, size, _PAYLOAD):
            chunk = data[start : start + _PAYLOAD]
            last = _LAST if start + _PAYLOAD >= size else 0
            packet = _pack(_pid, msg, len(chunk), flags | last) + chunk
            if _write(self._fd, packet) != len(packet):
                raise OSError(f"a log packet of {len(packet)} bytes was written in part")

    # -- reading -------------------------------------------------------------------------------

    def get(self) -> Any:
        while not self._ready:
            if self._local:
                self._take_local()
                continue
            self._wait()
        return self._ready.popleft()

    def get_many(self) -> list[Any]:
        """Every message that is complete, waiting for the first one."""
        while not self._ready and not self._local:
            self._wait()
        if self._local:
            self._take_local()
        items = list(self._ready)
        self._ready.clear()
        return items

    def _wait(self) -> None:
        """Read the pipe, blocking until something comes, unless :meth:`put_local` put
        something meanwhile (it wakes a reader that said it waits: one of the two sees
        the other, whatever the order, each step being atomic under the GIL)."""
        self._waiting = True
        if self._local:
            self._waiting = False
            return
        try:
            self._read()
        finally:
            self._waiting = False

    def _take_local(self) -> None:
        """Move the local items to the ready ones, after what the pipe holds now: a
        worker's lines, written before the orchestrator learned the task ended."""
        local = self._local
        taken = [local.popleft() for _ in range(len(local))]
        if self._poll.poll(0):
            with contextlib.suppress(EOFError):  # the next read sees the end again
                self._read()
        self._ready.extend(taken)

    def pending(self) -> bool:
        """Whether a message, or part of one, is waiting to be read."""
        return bool(self._ready) or bool(self._local) or bool(self._poll.poll(0))

    def empty(self) -> bool:
        return not self.pending()

    def close(self) -> None:
        for fd in (self.reader, self.writer):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.reader = self.writer = -1

    def _read(self) -> None:
        data = os.read(self.reader, _READ)
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
            pid, msg, size, flags = unpack(data, offset)
            start = offset + header
            end = start + size
            if end > total:
                break
            offset = end
            if flags & _WAKE:
                continue
            if flags & _LAST and (pid, msg) not in parts:  # a message of one packet: most
                payload = data[start:end]
            else:
                parts.setdefault((pid, msg), []).append(data[start:end])
                if not flags & _LAST:
                    continue
                payload = b"".join(parts.pop((pid, msg)))
            try:
                if flags & _TEXT:
                    number, created = _TEXT_HEAD.unpack_from(payload)
                    head = self._heads.get((pid, number))
                    if head is not None:  # else its writer died declaring it: dropped
                        text = payload[_TEXT_HEAD.size :].decode("utf-8", "surrogatepass")
                        texts = text.split("\n") if flags & _LINES else [text]
                        ready.append((*head, created, texts))
                    continue
                obj = pickle.loads(payload)
            except Exception:  # noqa: BLE001 - a broken message is dropped, not fatal
                continue
            if type(obj) is tuple and len(obj) == 3 and obj[0] == _HEAD:
                self._heads[(pid, obj[1])] = obj[2]
            else:
                ready.append(obj)
        return offset


def _enlarge(fd: int) -> None:
    """Make the pipe hold :data:`_PIPE_SIZE` bytes where the system allows it (Linux)."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setpipe is not None:
        with contextlib.suppress(OSError):  # more than this user may have: keep the default
            fcntl.fcntl(fd, setpipe, _PIPE_SIZE)
