"""Streams that go quiet when their reader leaves (:mod:`normandy_core._pipes`): what is
written after is dropped, without an error; until then they write as Python's own."""

from __future__ import annotations

import os
import select
import subprocess
import sys

import pytest

from normandy_core._pipes import quiet_text


def test_a_closed_pipe_drops_what_comes_next_without_an_error() -> None:
    read, write = os.pipe()
    stream = quiet_text(write, closefd=True)
    stream.write("read\n")
    stream.flush()
    assert os.read(read, 100) == b"read\n"
    os.close(read)  # the reader leaves
    stream.write("x" * 100_000 + "\n")  # more than a pipe holds
    stream.flush()
    stream.write("and more\n")
    stream.close()


SCRIPT = """
import sys, time
from normandy_core._pipes import quiet_on_closed_pipes
quiet_on_closed_pipes()
sys.stderr.write("at once\\n")
time.sleep(30)
"""


@pytest.mark.parametrize("unbuffered", ["", "1"])
def test_stderr_is_written_when_python_writes_it(unbuffered: str) -> None:
    """Under PYTHONUNBUFFERED, Python's stderr has no buffer: a buffer under the quiet
    stream held a line until the command's end (a run's last words did not come)."""
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stderr=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 15)  # long before the 30 s end
        assert ready, "the line was held back"
        assert proc.stderr.readline() == "at once\n"
    finally:
        proc.kill()
        proc.wait()
