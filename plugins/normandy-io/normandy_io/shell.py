"""``io.shell``: run a command, its output logged line by line.

The command runs in a session of its own (its own process group), so that the whole group,
the command and whatever it started, can be stopped together: on a timeout, when Normandy
stops the task's worker (``SIGTERM``), on Ctrl-C under the serial executor, and when the
command ends but left processes running in the background.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from normandy_io._params import Params, fill, shown

if TYPE_CHECKING:
    from normandy_core.pipe import Pipe

__all__ = ["CommandError", "CommandTimeout", "run_command", "shell"]

_POSIX = os.name == "posix"
_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
_TAIL = 10  # lines of stderr quoted in an error


class CommandError(RuntimeError):
    """The command failed; ``command`` is how it was given, ``returncode`` its exit status
    (negative: the signal that killed it), ``stderr_tail`` the last lines of its stderr."""

    def __init__(
        self, message: str, command: str, returncode: int | None, stderr_tail: list[str]
    ) -> None:
        self.command = command
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        if stderr_tail:
            message += "\nlast lines of its stderr:\n" + "\n".join(
                "  " + line for line in stderr_tail
            )
        super().__init__(message)


class CommandTimeout(CommandError):
    """The command ran past its timeout; its process group was killed."""


def shell(pipe: Pipe, log: logging.Logger, params: dict[str, Any]) -> None:
    """Run a command; fail if it exits non-zero or runs past its timeout.

    Params: ``command`` (a string run by ``/bin/sh``, or a list run without a shell),
    ``timeout`` (seconds, default 600), ``cwd`` (optional, relative to the project root;
    default the project root), ``env`` (optional mapping added to the environment; values
    may use ``{credentials.KEY}`` and ``{confs.KEY}``; ``null`` removes a variable),
    ``var`` (optional: a variable to store the command's stdout in, as text).
    """
    p = Params("io.shell", params, pipe)
    command = _command(p)
    timeout = p.number("timeout", 600.0, "seconds before the command is killed")
    cwd = p.path("cwd", "the folder to run in, relative to the project root", required=False)
    cwd = cwd or pipe.path
    if not cwd.is_dir():
        raise p.error("cwd", f"names no folder: {cwd}")
    env = _environment(p)
    var = p.var(what="the variable to store the command's stdout in") if p.given("var") else None
    log.info("running %s (in %s)", _display(command), shown(pipe.path, cwd))
    stdout = run_command(command, cwd=cwd, env=env, timeout=timeout, log=log)
    if var is not None:
        pipe.vars.update(var, stdout)


def run_command(
    command: str | list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    log: logging.Logger,
    label: str = "io.shell",
) -> str:
    """Run ``command`` in its own process group, logging its stdout lines at INFO and its
    stderr lines at WARNING; return its stdout.

    Raises :class:`CommandTimeout` after ``timeout`` seconds (the group is killed) and
    :class:`CommandError` on a non-zero exit.
    """
    display = _display(command)
    proc = subprocess.Popen(
        command,
        shell=isinstance(command, str),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=_POSIX,
    )
    out: list[str] = []
    tail: deque[str] = deque(maxlen=_TAIL)
    readers = [
        threading.Thread(target=_pump, args=(proc.stdout, log, logging.INFO, out), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, log, logging.WARNING, tail), daemon=True),
    ]
    for reader in readers:
        reader.start()
    timed_out = False
    try:
        with _group_stopped_on_sigterm(proc):
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                log.warning("%s: timed out after %g s, stopping: %s", label, timeout, display)
    finally:
        # also on an exception (Ctrl-C): never leave the command or its children behind
        left = _stop_group(proc)
        for reader in readers:
            reader.join(_GRACE)
    if left and not timed_out:
        log.warning("%s: stopped the processes the command left running", label)
    if any(reader.is_alive() for reader in readers):
        log.warning("%s: a process outside the command's group still holds its output", label)
    if timed_out:
        raise CommandTimeout(
            f"{label}: the command timed out after {timeout:g} s and was killed with its "
            f"process group: {display}",
            display,
            proc.returncode,
            list(tail),
        )
    if proc.returncode != 0:
        raise CommandError(
            f"{label}: the command {_status(proc.returncode)}: {display}",
            display,
            proc.returncode,
            list(tail),
        )
    return "".join(out)


def _pump(stream: IO[str], log: logging.Logger, level: int, sink: Any) -> None:
    with stream:
        for line in stream:
            sink.append(line if level == logging.INFO else line.rstrip("\n"))
            log.log(level, "%s", line.rstrip("\n"))


def _stop_group(proc: subprocess.Popen[str]) -> bool:
    """Stop whatever still runs in the command's group (SIGTERM, then SIGKILL after a
    grace period) and reap the command; return whether anything was still running."""
    if not _POSIX:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            return True
        return False
    if not _signal_group(proc.pid, signal.SIGTERM):
        proc.wait()
        return False
    deadline = time.monotonic() + _GRACE
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader, or the group never empties
        if not _group_running(proc.pid):
            break
        time.sleep(0.05)
    else:
        _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def _group_running(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: where PID 1 never
    reaps orphans (some containers), they would otherwise keep the group alive."""
    if not _signal_group(pgid, 0):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after the command name: state, ppid, pgrp
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; ``False`` when the group is gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # the group id was reused by someone else's processes
        return False
    return True


@contextmanager
def _group_stopped_on_sigterm(proc: subprocess.Popen[str]) -> Iterator[None]:
    """While the block runs, a SIGTERM (Normandy stopping the worker) first kills the
    command's group, then does what it did before. Only the main thread can do this."""
    if not _POSIX or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None:  # set from outside Python: cannot be chained nor restored
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        _signal_group(proc.pid, signal.SIGKILL)
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _command(p: Params) -> str | list[str]:
    what = "a string run by the shell, or a list of program and arguments run without one"
    value = p.params.get("command")
    if value is None:
        raise p.error("command", f"is required ({what})")
    if isinstance(value, str) and value.strip():
        return value
    if (
        isinstance(value, list)
        and value
        and all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in value)
    ):
        return [str(a) for a in value]
    raise p.error("command", f"must be {what}, not {value!r}")


def _environment(p: Params) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in p.mapping("env", "variables added to the environment").items():
        if not name or "=" in name:
            raise p.error("env", f"has an invalid variable name {name!r}")
        if value is None:
            env.pop(name, None)
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            env[name] = fill(str(value), p.pipe, p.error, "env")
        else:
            raise p.error("env", f"{name}: give a string or a number, not {value!r}")
    return env


def _display(command: str | list[str]) -> str:
    return command if isinstance(command, str) else shlex.join(command)


def _status(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"
