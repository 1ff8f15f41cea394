"""``normandy_project``: a temporary copy of a project, run with the real ``normandy``
command in a subprocess, as a user or a scheduler runs it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from normandy_core.testing._results import log_tail

LEFT_OUT = (".normandy", "logs", ".git", "__pycache__", "*.egg-info", "build", ".pytest_cache")
"""What a copy of a project leaves out: its runs, its logs, its git folder, its builds."""
TIMEOUT = 600.0
"""Seconds a command may take before it is stopped (SIGTERM, then SIGKILL)."""
STOP_GRACE = 30.0


class RunFailed(AssertionError):
    """Raised by :meth:`CommandResult.check` for a command that did not exit 0."""


def normandy_command() -> list[str]:
    """The ``normandy`` console script beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "normandy"
    if script.exists():
        return [str(script)]
    found = shutil.which("normandy")
    return [found] if found else [sys.executable, "-m", "normandy_cli"]


@dataclass(frozen=True, repr=False)
class CommandResult:
    """How one ``normandy`` command ended."""

    args: tuple[str, ...]
    """The command's arguments (after ``normandy``)."""
    exit_code: int
    """0 success, 1 a flow failed, 2 a usage or configuration error, 130 interrupted."""
    stdout: str
    stderr: str
    """The progress, the summary table, the processes' log lines and the errors."""

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def check(self) -> CommandResult:
        """This result if the command exited 0, else raise :class:`RunFailed` showing
        the end of its stderr."""
        if self.exit_code != 0:
            raise RunFailed(self.describe())
        return self

    def describe(self, tail: int = 30) -> str:
        """The command, its exit code, and the last ``tail`` lines of its stderr."""
        lines = self.stderr.splitlines()
        return f"normandy {' '.join(self.args)} exited {self.exit_code}\n" + log_tail(
            lines, tail
        ).replace("log", "stderr", 1)

    def __repr__(self) -> str:
        return f"<CommandResult normandy {' '.join(self.args)}: exit {self.exit_code}>"


@dataclass(frozen=True, repr=False)
class RunResult(CommandResult):
    """How ``normandy run --json`` ended, with its summary."""

    summary: Mapping[str, Any] | None = None
    """The ``run --json`` summary: ``run_id``, ``status``, ``counts``, ``failing_task``,
    ``tasks`` (each with ``key``, ``status``, ``attempts``, ``error``…); ``None`` where the
    run did not start (a configuration error, exit 2)."""

    @property
    def status(self) -> str | None:
        """``succeeded``, ``failed``, ``interrupted``; ``None`` where it did not start."""
        return self.summary["status"] if self.summary else None

    @property
    def tasks(self) -> dict[str, str]:
        """Each task's status by key (``flow.step.task``)."""
        return {t["key"]: t["status"] for t in (self.summary or {}).get("tasks", [])}

    def __repr__(self) -> str:
        failing = (self.summary or {}).get("failing_task")
        more = f", failing task {failing}" if failing else ""
        return f"<RunResult exit {self.exit_code} ({self.status or 'not started'}{more})>"


class NormandyProject:
    """A project folder, run with the real ``normandy`` command
    (:func:`copy_project` makes a temporary copy of one)."""

    def __init__(self, path: str | Path, env: Mapping[str, str] | None = None) -> None:
        self.path = Path(path)
        """The project's root folder (the copy)."""
        self.env = dict(env or {})
        """Environment variables every command gets, over this process's."""
        self.results: list[CommandResult] = []
        """Every command run so far, for the report of a failing test."""

    def run(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = TIMEOUT
    ) -> RunResult:
        """``normandy run --json ARGS…`` in the project: the exit code and the summary
        (``run("--tags", "nightly", "--param", "limit=10")``)."""
        ended = self.command("run", "--json", *args, env=env, timeout=timeout)
        summary = None
        if ended.stdout.strip():
            try:
                summary = json.loads(ended.stdout)
            except ValueError:
                summary = None
        result = RunResult(ended.args, ended.exit_code, ended.stdout, ended.stderr, summary)
        self.results[-1] = result
        return result

    def command(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = TIMEOUT
    ) -> CommandResult:
        """Any ``normandy`` command in the project (``command("validate")``)."""
        environ = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **self.env, **(env or {})}
        proc = subprocess.Popen(
            [*normandy_command(), *args],
            cwd=self.path,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            raise TimeoutError(
                f"normandy {' '.join(args)} did not end within {timeout:g} s in "
                f"{self.path}; it was stopped"
            ) from None
        except BaseException:  # Ctrl-C in the test session: no run left behind
            _stop(proc)
            raise
        result = CommandResult(tuple(args), proc.returncode, stdout, stderr)
        self.results.append(result)
        return result

    def load(self, name: str, flow: str | None = None, run: str = "last") -> Any:
        """The value of the variable ``name`` in the project's last run that wrote it
        (or in ``run``); ``flow`` where two flows wrote it (:func:`normandy_core.load`)."""
        from normandy_core.catalog import load

        return load(name, flow=flow, run=run, project=self.path)

    def __repr__(self) -> str:
        return f"<NormandyProject {self.path}>"


def copy_project(
    source: str | Path, into: str | Path, env: Mapping[str, str] | None = None
) -> NormandyProject:
    """A copy of the project ``source`` under the folder ``into`` (its runs, logs, git
    folder and builds left out: see :data:`LEFT_OUT`)."""
    source = Path(source).resolve()
    target = Path(into) / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*LEFT_OUT), symlinks=True)
    return NormandyProject(target, env)


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM (a run stops its tasks and records itself interrupted), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, None)):
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        try:
            proc.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def describe_commands(results: Sequence[CommandResult]) -> str:
    """What a failing test shows of the commands it ran."""
    return "\n\n".join(result.describe() for result in results)
