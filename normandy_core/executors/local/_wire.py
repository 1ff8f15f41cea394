"""Messages between the engine and its processes: pickles framed by their length on a
Unix stream socket, with descriptors passed alongside where a message carries some
(``SCM_RIGHTS``: a new process gets its pipes this way, never by inheritance).

A message's descriptors travel with its header, and the kernel never merges the bytes of
two ``sendmsg`` calls carrying descriptors into one read, so reading the header alone
with :func:`socket.recv_fds` gets exactly its own.
"""

from __future__ import annotations

import pickle
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_HEADER = struct.Struct("<QB")  # payload length, number of descriptors
MAX_FDS = 8


@dataclass(frozen=True)
class AttemptEnd:
    """Put on a pool's log queue after every record of an attempt, where its owner asked
    (``mark_ends``: :class:`~normandy_core.executors.kit.RecordRelay`)."""

    key: str
    attempt: int


def send(sock: socket.socket, message: Any, fds: Sequence[int] = ()) -> None:
    """Send ``message`` (pickled) and ``fds`` (copied into the receiving process)."""
    payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    header = _HEADER.pack(len(payload), len(fds))
    if fds:
        socket.send_fds(sock, [header], list(fds))
        sock.sendall(payload)
    else:
        sock.sendall(header + payload)


def receive(sock: socket.socket) -> tuple[Any, list[int]]:
    """The next message and the descriptors sent with it (now this process's, to close);
    :class:`EOFError` once the other end is closed."""
    header, fds, _, _ = socket.recv_fds(sock, _HEADER.size, MAX_FDS)
    if not header:
        raise EOFError("the other end is closed")
    if len(header) < _HEADER.size:
        header += _exactly(sock, _HEADER.size - len(header), _CUT)
    size, _count = _HEADER.unpack(header)
    return pickle.loads(_exactly(sock, size, _CUT)), fds


def receive_plain(sock: socket.socket) -> Any:
    """The next message of a connection that never carries descriptors (a worker's and
    its pool's): read without :func:`socket.recv_fds`' ancillary buffers (a message per
    task each way); :class:`EOFError` once the other end is closed."""
    header = _exactly(sock, _HEADER.size, "the other end is closed")
    size, count = _HEADER.unpack(header)
    if count:
        raise OSError(f"{count} descriptors came on a connection that takes none")
    return pickle.loads(_exactly(sock, size, _CUT))


_CUT = "the other end closed in the middle of a message"


def _exactly(sock: socket.socket, size: int, closed: str) -> bytes | bytearray:
    data = sock.recv(size, socket.MSG_WAITALL)  # all of it, but for a signal or an end
    if len(data) == size:
        return data
    got = bytearray(data)
    while len(got) < size:
        more = sock.recv(size - len(got), socket.MSG_WAITALL)
        if not more:
            raise EOFError(closed)
        got += more
    return got
