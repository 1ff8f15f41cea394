"""What a task started: the processes below the one that ran it (SPEC 11: no process
outlives its run).

A task's subprocesses, and theirs, stay in the process group of the process running the
task — a worker, which leads a group of its own (see :mod:`normandy_core.executors.local._worker`),
or ``normandy`` itself under ``serial``. When the task ends, :class:`TaskChildren` kills
those that are still there; a process that wants a daemon starts it in a session of its
own (``start_new_session=True``), which takes it out of the group. A worker is also a
*child subreaper*, so that a descendant whose parent exited (``sh -c 'cmd &'``) becomes
the worker's child instead of init's, and is found.

Linux only (``/proc``, ``prctl``): elsewhere these are no-ops, and what remains is the
group kill of :func:`kill_group` when a worker is stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import NamedTuple

__all__ = [
    "RunChildren",
    "TaskChildren",
    "become_subreaper",
    "descendants",
    "kill_below",
    "kill_group",
]

_PR_SET_CHILD_SUBREAPER = 36
_KILL_ROUNDS = 50
"""How many times the processes left are looked for again (a process may fork while it is
being killed, and a killed parent's children are only then re-parented to us)."""
_PAUSE = 0.005


class _Stat(NamedTuple):
    state: str
    ppid: int
    pgid: int


def become_subreaper(on: bool = True) -> bool:
    """Make this process the *child subreaper* of its descendants (or stop being one):
    an orphaned descendant is re-parented to it rather than to init. ``False`` where the
    system cannot."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0)
    except (OSError, AttributeError):  # not Linux, or no prctl
        return False


def _stat(pid: int) -> _Stat | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp …": the command may hold spaces and parentheses
    fields = text[text.rfind(b")") + 2 :].split()
    try:
        return _Stat(fields[0].decode(), int(fields[1]), int(fields[2]))
    except (IndexError, ValueError):
        return None


def _children(pid: int) -> list[int]:
    """The direct children of ``pid``, from the ``children`` file of each of its threads
    (each thread has the children it started), else from every process's parent."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as handle:
                found.extend(int(child) for child in handle.read().split())
        except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN
            return _children_by_scan(pid)
        except (OSError, ValueError):  # the thread ended meanwhile
            continue
    return found


def _children_by_scan(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat.ppid == pid:
                found.append(int(entry))
    return found


def descendants(pid: int | None = None) -> list[int]:
    """Every process below ``pid`` (this process by default), zombies included."""
    found: list[int] = []
    frontier = [os.getpid() if pid is None else pid]
    while frontier:
        children = [child for parent in frontier for child in _children(parent)]
        found.extend(children)
        frontier = children
    return found


class TaskChildren:
    """The processes a task starts: created as the task starts, :meth:`end` kills those
    still in this process's group when it ends (not those that were there before)."""

    def __init__(self) -> None:
        self.me = os.getpid()
        self.group = os.getpgid(0)
        self.before = set(descendants(self.me)) if _has_children() else set()

    def end(self) -> None:
        """Kill what the task left running, reap what was this process's child. Never
        raises: a task's end must not fail on its leftovers."""
        with contextlib.suppress(Exception):  # /proc vanished, a pid reused: nothing to do
            self._end()

    def _end(self) -> None:
        if not _has_children():  # the usual case, at the cost of one system call
            return
        for _ in range(_KILL_ROUNDS):
            left = []
            for pid in descendants(self.me):
                stat = _stat(pid)
                if pid in self.before or stat is None or stat.pgid != self.group:
                    continue
                left.append((pid, stat))
            running = [pid for pid, stat in left if stat.state not in "ZX"]
            for pid in running:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            for pid, stat in left:
                if stat.ppid == self.me:
                    _reap(pid)
            if not running:
                return
            time.sleep(_PAUSE)


def _has_children() -> bool:
    """Whether this process has a child, running or not yet collected (without /proc:
    a process without children has no descendant it could find)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    except (AttributeError, OSError):  # no waitid here: look
        return True
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def kill_group(leader: int) -> bool:
    """SIGKILL what is left of the process group that ``leader`` led, once ``leader`` is
    gone (its parent has collected it): the processes a stopped worker's task started.

    ``True`` once the group is dealt with; ``False`` while a process with that pid exists
    (the leader itself, or one that took its pid after its group emptied): nothing is
    killed then. A group id is never reused while the group has a member, so a gone
    leader's id names its own leftovers only.
    """
    try:
        os.kill(leader, 0)
    except ProcessLookupError:
        pass
    except PermissionError:  # another user's process took the pid: the group was empty
        return True
    else:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)
    return True


def kill_below(pid: int, *, spare: frozenset[int] = frozenset()) -> None:
    """SIGKILL every process below ``pid`` (not ``pid`` itself): its descendants in or out
    of its process group — a daemon in a session of its own included — looked for again
    in rounds, as they may fork while being killed; reap those that were this process's
    children. ``spare``: processes (and what is below them) left alone. Never raises."""
    me = os.getpid()
    with contextlib.suppress(Exception):
        for _ in range(_KILL_ROUNDS):
            running = []
            for child in _below(pid, spare):
                stat = _stat(child)
                if stat is None:
                    continue
                if stat.state not in "ZX":
                    running.append(child)
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(child, signal.SIGKILL)
                if stat.ppid == me:
                    _reap(child)
            if not running:
                return
            time.sleep(_PAUSE)


def _below(pid: int, spare: frozenset[int]) -> list[int]:
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = [c for parent in frontier for c in _children(parent) if c not in spare]
        found.extend(children)
        frontier = children
    return found


class RunChildren:
    """``normandy`` as the subreaper of everything a run starts (SPEC 17): a task's
    descendant that double-forks into a session of its own is re-parented to this process
    instead of init, and :meth:`end` kills what the run left below it — not the processes
    that were there before (``normandy`` used as a library, in a program of its own)."""

    def __init__(self) -> None:
        self.subreaper = become_subreaper()
        self.before = frozenset(descendants()) if self.subreaper else frozenset()

    def end(self) -> None:
        """Kill what is left, stop being the subreaper. Never raises."""
        if self.subreaper:
            kill_below(os.getpid(), spare=self.before)
            become_subreaper(False)
            self.subreaper = False
