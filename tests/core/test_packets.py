"""The log queue between processes (:mod:`normandy_core._packets`): messages of any size
from several processes arrive whole, and a writer killed in the middle of a message
blocks nobody."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import pytest

from normandy_core._packets import PACKET, PacketQueue


def _writer(queue: PacketQueue, name: str, count: int, size: int) -> None:
    for i in range(count):
        queue.put((name, i, name * size))


def _stuck_writer(queue: PacketQueue) -> None:
    queue.put("started")
    queue.put("y" * (64 << 20))  # far more than the pipe holds: stuck in the middle


def _get(queue: PacketQueue, timeout: float) -> object:
    """``queue.get()`` or ``TimeoutError``: a hang must fail the test, not freeze it."""
    box: list[object] = []
    reader = threading.Thread(target=lambda: box.append(queue.get()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box:
        raise TimeoutError(f"nothing came out of the queue in {timeout} s")
    return box[0]


@pytest.mark.parametrize("size", [0, 10, PACKET, 10 * PACKET + 7, 1 << 20])
def test_a_message_of_any_size_comes_back_whole(size):
    queue = PacketQueue()
    value = {"text": "z" * size, "n": size}
    # from another thread: a message larger than the pipe's buffer waits for the reader
    writer = threading.Thread(target=lambda: (queue.put(value), queue.put(None)))
    writer.start()
    assert _get(queue, 10) == value
    assert _get(queue, 10) is None
    writer.join(10)
    assert queue.empty()


def test_messages_of_several_processes_interleave_and_arrive_whole():
    ctx = multiprocessing.get_context("fork")  # the queue is inherited, as by forked workers
    queue = PacketQueue()
    writers = [
        ctx.Process(target=_writer, args=(queue, name, 50, 3 * PACKET)) for name in "abc"
    ]
    for w in writers:
        w.start()
    got = [_get(queue, 30) for _ in range(150)]
    for w in writers:
        w.join(10)
    for name in "abc":
        mine = [m for m in got if m[0] == name]
        assert [m[1] for m in mine] == list(range(50))  # in order, per writer
        assert all(m[2] == name * 3 * PACKET for m in mine)


def test_a_writer_killed_in_the_middle_of_a_message_blocks_nobody():
    ctx = multiprocessing.get_context("fork")  # the queue is inherited, as by forked workers
    queue = PacketQueue()
    writer = ctx.Process(target=_stuck_writer, args=(queue,))
    writer.start()
    assert _get(queue, 30) == "started"
    time.sleep(0.3)  # nobody reads: the writer waits in the middle of its message
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(10)
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.extend(iter(queue.get, None)), daemon=True)
    reader.start()
    other = ctx.Process(target=_writer, args=(queue, "after", 1, 10))
    other.start()
    other.join(10)
    assert other.exitcode == 0  # its put did not wait for the dead writer
    queue.put("and mine")
    queue.put(None)
    reader.join(10)
    assert got == [("after", 0, "after" * 10), "and mine"]  # the broken message is dropped


def test_get_many_takes_every_complete_message_at_once():
    queue = PacketQueue()
    values = [("m", i, "z" * (i * 1000)) for i in range(10)]  # some of several packets
    writer = threading.Thread(target=lambda: [queue.put(v) for v in values])
    writer.start()
    writer.join(10)
    got: list[object] = []
    while len(got) < len(values):
        got.extend(queue.get_many())
    assert got == values
    assert not queue.pending()
    queue.put("more")
    assert queue.pending()


def _next_id(queue: PacketQueue) -> None:
    from normandy_core import _packets

    queue.put(next(_packets._ids))


def test_processes_forked_from_one_parent_number_their_messages_apart():
    """Workers are forked from one fork server: with the message ids of the server, a
    worker reusing a dead one's pid could complete the dead one's unfinished message."""
    ctx = multiprocessing.get_context("fork")  # the queue is inherited, as by forked workers
    queue = PacketQueue()
    children = [ctx.Process(target=_next_id, args=(queue,)) for _ in range(3)]
    for child in children:
        child.start()
    firsts = {_get(queue, 30) for _ in children}
    for child in children:
        child.join(10)
    assert len(firsts) == 3


def _texts(queue: PacketQueue, name: str) -> None:
    for i in range(3):
        queue.put_text(("head", name, 20), float(i), f"{name} {i}\nsecond line", lines=True)
    queue.put_text(("head", name, 30), 9.0, "one message\nof two lines", lines=False)
    queue.put_text(("head", name, 20), 5.0, "é" * PACKET, lines=True)  # several packets


def test_texts_come_back_with_their_head_from_every_writer():
    ctx = multiprocessing.get_context("fork")  # the queue is inherited, as by forked workers
    queue = PacketQueue()
    writers = [ctx.Process(target=_texts, args=(queue, name)) for name in "ab"]
    for w in writers:
        w.start()
    got = [_get(queue, 30) for _ in range(10)]
    for w in writers:
        w.join(10)
    for name in "ab":
        mine = [m for m in got if m[1] == name]
        assert mine[:3] == [
            ("head", name, 20, float(i), [f"{name} {i}", "second line"]) for i in range(3)
        ]
        assert mine[3] == ("head", name, 30, 9.0, ["one message\nof two lines"])
        assert mine[4] == ("head", name, 20, 5.0, ["é" * PACKET])
    assert queue.empty()


class _Unpicklable:
    def __reduce__(self) -> str:
        raise TypeError("put_local must not pickle")


def test_a_local_item_comes_as_it_is_after_what_the_pipe_held_when_it_was_put() -> None:
    """The orchestrator's own records go on its queue as they are (no pickling, no
    pipe): taken after what the pipe held when they were put, as a task's lines come
    before the record of its end."""
    q = PacketQueue()
    try:
        own = _Unpicklable()
        q.put_text(("f", "k"), 1.0, "a line of the task")  # a worker's, through the pipe
        q.put_local(own)
        assert q.pending()
        assert q.get_many() == [("f", "k", 1.0, ["a line of the task"]), own]
        q.put_local("alone")
        assert q.get() == "alone" and not q.pending()
    finally:
        q.close()


def test_a_local_item_wakes_a_reader_waiting_on_the_pipe_and_only_then() -> None:
    q = PacketQueue()
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.extend(q.get_many()))
    try:
        reader.start()
        deadline = time.monotonic() + 10
        while not q._waiting and time.monotonic() < deadline:  # blocked reading the pipe
            time.sleep(0.001)
        assert q._waiting
        q.put_local("wake up")
        reader.join(10)
        assert not reader.is_alive() and got == ["wake up"]
        q.put_local("no reader waits")  # nothing written to the pipe: nobody to wake
        assert not q._poll.poll(0) and q.get_many() == ["no reader waits"]
    finally:
        q.close()
