"""``io.shell``: real commands, real exit codes, a real timeout with a child to kill."""

from __future__ import annotations

import logging
import sys
import time

import pytest
from normandy_io import ParamError
from normandy_io.shell import CommandError, CommandTimeout, shell

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell and process groups")


def _run(make_pipe, log, **params):
    pipe = make_pipe(params)
    shell(pipe, log, pipe.params)
    return pipe


def test_output_is_logged_and_stored(make_pipe, log, project, caplog):
    with caplog.at_level(logging.INFO):
        pipe = _run(make_pipe, log, command="echo one; echo two >&2; printf 'three\\n'", var="out")
    assert pipe.vars["out"] == "one\nthree\n"
    records = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("INFO", "one") in records
    assert ("WARNING", "two") in records
    assert ("INFO", "three") in records
    assert records[0] == ("INFO", "running echo one; echo two >&2; printf 'three\\n' (in .)")


def test_a_list_runs_without_a_shell(make_pipe, log, project):
    (project / "sub").mkdir()
    pipe = _run(
        make_pipe,
        log,
        command=[sys.executable, "-c", "import os, sys; print(os.getcwd(), sys.argv[1:])", "$HOME"],
        cwd="sub",
        var="out",
    )
    assert pipe.vars["out"] == f"{project / 'sub'} ['$HOME']\n"


def test_env_is_added_with_placeholders(make_pipe, log, monkeypatch):
    monkeypatch.setenv("IO_DROP_ME", "x")
    pipe = make_pipe(
        {
            "command": 'echo "$IO_TOKEN $IO_DIR $IO_N ${IO_DROP_ME:-unset} $PATH"',
            "env": {
                "IO_TOKEN": "{credentials.api.token}",
                "IO_DIR": "{confs.write}",
                "IO_N": 3,
                "IO_DROP_ME": None,
            },
            "var": "out",
        },
        confs={"write": "processed"},
        credentials={"api": {"token": "s3cr3t"}},
    )
    shell(pipe, log, pipe.params)
    token, folder, n, dropped, path = pipe.vars["out"].split()
    assert (token, folder, n, dropped) == ("s3cr3t", "processed", "3", "unset")
    assert path  # the rest of the environment is kept


def test_a_non_zero_exit_raises_with_the_code_and_the_command(make_pipe, log):
    with pytest.raises(CommandError) as info:
        _run(make_pipe, log, command="echo failing >&2; exit 3")
    error = info.value
    assert not isinstance(error, CommandTimeout)
    assert error.returncode == 3
    assert str(error) == (
        "io.shell: the command exited with code 3: echo failing >&2; exit 3\n"
        "last lines of its stderr:\n  failing"
    )


def test_a_command_killed_by_a_signal(make_pipe, log):
    with pytest.raises(CommandError, match="the command was killed by SIGKILL: "):
        _run(make_pipe, log, command=["sh", "-c", "kill -9 $$"])


def test_a_timeout_kills_the_whole_process_group(make_pipe, log, project, alive, caplog):
    """The shell and the child it started in the background are both gone."""
    command = "sleep 60 & echo $! > child.pid; sleep 60"
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as info, caplog.at_level(logging.WARNING):
        _run(make_pipe, log, command=command, timeout=0.5)
    assert time.monotonic() - started < 10
    assert str(info.value) == (
        "io.shell: the command timed out after 0.5 s and was killed with its process group: "
        + command
    )
    child = int((project / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
    assert "io.shell: timed out after 0.5 s, stopping" in caplog.text


def test_a_group_that_ignores_sigterm_is_killed(make_pipe, log, project, alive):
    command = "trap '' TERM; sleep 60 & echo $! > child.pid; sleep 60"
    with pytest.raises(CommandTimeout):
        _run(make_pipe, log, command=command, timeout=0.3)
    child = int((project / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_background_processes_left_behind_are_stopped(make_pipe, log, project, alive, caplog):
    with caplog.at_level(logging.WARNING):
        _run(make_pipe, log, command="sleep 60 >/dev/null 2>&1 & echo $! > child.pid")
    child = int((project / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
    assert "stopped the processes the command left running" in caplog.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {},
            "io.shell: params.command is required (a string run by the shell, or a list of "
            "program and arguments run without one)",
        ),
        ({"command": ""}, "io.shell: params.command must be a string run by the shell"),
        ({"command": []}, "io.shell: params.command must be a string run by the shell"),
        ({"command": "true", "timeout": 0}, "io.shell: params.timeout must be a positive number"),
        ({"command": "true", "timeout": "1m"}, "io.shell: params.timeout must be a positive"),
        ({"command": "true", "cwd": "nowhere"}, "io.shell: params.cwd names no folder:"),
        ({"command": "true", "env": {"A": [1]}}, "io.shell: params.env A: give a string"),
        ({"command": "true", "env": {"A=B": "1"}}, "io.shell: params.env has an invalid"),
        ({"command": "true", "var": "no/slash"}, "io.shell: params.var is not a valid variable"),
        (
            {"command": "true", "env": {"T": "{credentials.token}"}},
            "io.shell: params.env refers to {credentials.token}, but the credentials file of "
            "env 'dev' is empty or not set",
        ),
    ],
)
def test_invalid_params(make_pipe, log, params, message):
    pipe = make_pipe(params)
    with pytest.raises(ParamError) as info:
        shell(pipe, log, pipe.params)
    assert str(info.value).startswith(message)
