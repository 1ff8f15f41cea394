"""What a task started (:mod:`normandy_core._children`), with real processes: killed at the
task's end unless they were there before or left the group; a stopped worker's group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from normandy_core._children import TaskChildren, descendants, kill_group
from tests.cli.test_faults import alive, wait_until_gone

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")


@pytest.fixture
def reaped():
    """Processes the test starts; whatever is left of them is killed afterwards."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


def test_the_processes_a_task_started_are_killed_at_its_end(reaped):
    before = subprocess.Popen(["sleep", "300"])
    reaped.append(before)
    children = TaskChildren()
    during = subprocess.Popen(["sleep", "300"])
    daemon = subprocess.Popen(["sleep", "300"], start_new_session=True)
    reaped += [during, daemon]
    assert {during.pid, daemon.pid} <= set(descendants())
    children.end()
    assert not alive(during.pid)  # killed, and collected: no zombie either
    assert before.poll() is None  # there before the task
    assert daemon.poll() is None  # in a session of its own


def test_orphans_are_found_below_a_subreaper():
    """A subprocess whose parent exits (``sh -c 'cmd &'``) is re-parented to the worker, a
    child subreaper, and killed with the rest."""
    script = textwrap.dedent(
        """
        import subprocess
        from normandy_core._children import TaskChildren, become_subreaper

        assert become_subreaper()
        children = TaskChildren()
        shell = ["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"]
        print(subprocess.run(shell, capture_output=True, text=True).stdout.strip(), flush=True)
        children.end()
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    orphan = int(out.stdout)
    left = wait_until_gone([orphan], within=5)
    with contextlib.suppress(ProcessLookupError):
        os.kill(orphan, signal.SIGKILL)
    assert not left


def test_a_stopped_worker_s_group_is_killed_once_it_is_gone():
    leader = subprocess.Popen(
        ["sh", "-c", "sleep 300 & echo $!; wait"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # leads its own group, as a worker does
    )
    assert leader.stdout is not None
    member = int(leader.stdout.readline())
    try:
        assert kill_group(leader.pid) is False  # its leader still runs: not touched
        assert alive(member)
        leader.kill()
        leader.wait()
        assert kill_group(leader.pid) is True
        assert not wait_until_gone([member], within=5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader.pid, signal.SIGKILL)
        if leader.poll() is None:
            leader.kill()
            leader.wait()
