"""Descriptors 1 and 2 as a task's records (:mod:`normandy_core._capture`), in this process
as under ``serial``: what subprocesses and ``os.write`` produce, complete at the task's
end, the descriptors given back, and the console kept apart."""

from __future__ import annotations

import logging
import os
import queue
import subprocess
from collections.abc import Iterator

import pytest

from normandy_core._capture import Capture, console_stream
from normandy_core.logs import QueueHandler


def _logger(name: str, records: queue.Queue) -> logging.Logger:
    logger = logging.getLogger(f"test.capture.{name}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.handlers[:] = [QueueHandler(records)]
    return logger


def _taken(records: queue.Queue) -> list[tuple[str, int, str]]:
    out = []
    while not records.empty():
        record = records.get_nowait()
        out.append((record.name.rsplit(".", 1)[1], record.levelno, record.getMessage()))
    return out


@pytest.fixture
def capture() -> Iterator[tuple[Capture, queue.Queue]]:
    records: queue.Queue = queue.Queue()
    capture = Capture(_logger("outside", records), permanent=False)
    try:
        yield capture, records
    finally:
        capture.close()


def test_a_task_s_descriptors_become_its_records(capture):
    capture, records = capture
    fds = [os.fstat(fd).st_ino for fd in (1, 2)]
    capture.begin(_logger("task", records))
    subprocess.run(["echo", "from echo"], check=True)
    subprocess.run(["sh", "-c", "echo from sh >&2"], check=True)
    os.write(1, "r\u00e9sum\u00e9 ".encode()[:-2])  # a character cut in two…
    os.write(1, "\u00e9 in two writes\n".encode()[1:])  # …and completed
    os.write(2, b"a last line without a newline")
    capture.end()
    assert [os.fstat(fd).st_ino for fd in (1, 2)] == fds  # given back
    got = _taken(records)
    assert sorted(got) == sorted(
        [
            ("task", logging.INFO, "from echo"),
            ("task", logging.WARNING, "from sh"),
            ("task", logging.INFO, "r\u00e9sum\u00e9 in two writes"),
            ("task", logging.WARNING, "a last line without a newline"),
        ]
    )


def test_what_comes_after_the_task_is_not_its(capture):
    capture, records = capture
    capture.begin(_logger("task", records))
    os.write(1, b"during\n")
    late = subprocess.Popen(["sh", "-c", "sleep 0.5; echo late"])  # holds the pipe
    capture.end()
    late.wait()
    capture.begin(_logger("next", records))
    os.write(1, b"next task\n")
    capture.end()
    assert _taken(records) == [
        ("task", logging.INFO, "during"),
        ("outside", logging.INFO, "late"),
        ("next", logging.INFO, "next task"),
    ]


def test_the_console_is_not_captured(capture):
    capture, records = capture
    console = console_stream()
    capture.begin(_logger("task", records))
    console.write("for the console\n")
    console.flush()
    capture.end()
    assert _taken(records) == []


def test_a_character_cut_at_the_task_s_end_stays_in_the_task(capture):
    capture, records = capture
    capture.begin(_logger("task", records))
    os.write(1, "cut \u00e9".encode()[:-1])
    capture.end()
    capture.begin(_logger("next", records))
    os.write(1, b"whole\n")
    capture.end()
    assert _taken(records) == [
        ("task", logging.INFO, "cut \ufffd"),
        ("next", logging.INFO, "whole"),
    ]
