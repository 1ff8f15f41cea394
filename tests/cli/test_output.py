"""How a command's errors reach the user (``normandy_cli._output.reports_errors``): a
user's error is a message and exit 2, an error of the machine (a full disk, a folder it
cannot write) too; anything else is a bug of Normandy's, shown with its traceback and a
request to report it."""

from __future__ import annotations

import errno
import json
import os
import subprocess

import pytest
import typer
from typer.testing import CliRunner

from normandy_cli._output import reports_errors
from normandy_core.errors import NormandyError
from normandy_core.testing._project import normandy_command


def _app(error: BaseException) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @reports_errors
    def fail() -> None:
        raise error

    return app


def run(error: BaseException) -> tuple[int, str]:
    result = CliRunner().invoke(_app(error), [])
    return result.exit_code, result.output


def test_a_users_error_is_a_message():
    code, output = run(NormandyError("no flow has the tag x"))
    assert (code, output) == (2, "normandy: error: no flow has the tag x\n")


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EACCES, errno.EROFS, errno.ENOENT])
def test_an_error_of_the_machine_is_a_message(number):
    code, output = run(OSError(number, "it went wrong", "/data/logs/run.log"))
    assert code == 2
    assert output.startswith("normandy: error: it went wrong (/data/logs/run.log); check that")
    assert "Traceback" not in output


@pytest.mark.parametrize(
    "error", [RuntimeError("a bug"), OSError(errno.EBADF, "Bad file descriptor"), KeyError("k")]
)
def test_a_bug_shows_its_traceback_and_asks_for_a_report(error):
    code, output = run(error)
    assert code == 1
    assert "Traceback (most recent call last)" in output
    assert "normandy: internal error: this is a bug in Normandy" in output
    assert "Please report it" in output


def test_how_commands_end_is_not_a_bug():
    assert run(typer.Exit(0)) == (0, "")
    assert run(typer.Exit(1))[0] == 1
    code, output = run(typer.BadParameter("not KEY=VALUE", param_hint="--param"))
    assert code == 2 and "Invalid value for --param: not KEY=VALUE" in output
    assert "internal error" not in output


# -- a reader that goes away (issue 23) -------------------------------------------------------

CLOSING_PROJECT = """
confs:
  envs: {dev: {}}
  processes: {hello: "hello:hello"}
flows:
  greet:
    tags: [default]
    steps:
      say: {hello: {outputs: greeting}}
"""


def _closed_pipe() -> int:
    """The writing end of a pipe whose reader is gone already, as `| head -1` is once it
    has its line: every write to it fails with EPIPE."""
    read, write = os.pipe()
    os.close(read)
    return write


def test_every_command_ends_quietly_on_a_closed_pipe(make_project, tmp_path):
    """`normandy runs last | head -1` printed a BrokenPipeError and "internal error: this
    is a bug in Normandy": a reader that leaves early is not an error of the command."""
    root = make_project(CLOSING_PROJECT, {"hello.py": "def hello():\n    return 'hi'\n"})
    first = subprocess.run(
        [*normandy_command(), "run"], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    commands = [
        ["--version"],
        ["runs"],
        ["runs", "last"],
        ["runs", "--json"],
        ["list"],
        ["graph"],
        ["vars"],
        ["run", "--dry-run"],
        ["--help"],
    ]
    for args in commands:
        stdout = _closed_pipe()
        try:
            ended = subprocess.run(
                [*normandy_command(), *args],
                cwd=root,
                stdout=stdout,
                stderr=subprocess.PIPE,
                text=True,
                timeout=120,
            )
        finally:
            os.close(stdout)
        assert (args, ended.returncode, ended.stderr) == (args, 0, ""), ended.stderr
    # a run whose console goes away still runs to its end, is recorded, and says so
    closed = _closed_pipe()
    try:
        ended = subprocess.run(
            [*normandy_command(), "run", "--json"], cwd=root, stdout=closed, stderr=closed,
            timeout=120,
        )
    finally:
        os.close(closed)
    assert ended.returncode == 0
    shown = subprocess.run(
        [*normandy_command(), "runs", "--json"], cwd=root, capture_output=True, text=True
    )
    assert [r["status"] for r in json.loads(shown.stdout)] == ["succeeded", "succeeded"]


def test_json_text_reads_back_as_the_value_it_was_made_of():
    """``--json`` output: the same value as ``json.dumps`` gives, members and items one
    per line two levels deep, each deeper value whole on its line."""
    from normandy_cli._output import json_text

    value = {
        "run_id": "r",
        "counts": {"succeeded": 2},
        "empty": {},
        "none": [],
        "tasks": [
            {"key": "f.s.a", "params": {"n": [1, 2]}, "note": "é ☃ \"q\"\n"},
            {"key": "f.s.b", "params": {}, "error": None},
        ],
        "when": object(),
    }
    text = json_text(value, default=lambda o: "<object>")
    assert json.loads(text) == json.loads(json.dumps(value, default=lambda o: "<object>"))
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert '  "counts": {' in lines and '    "succeeded": 2' in lines
    assert '  "empty": {},' in lines and '  "none": [],' in lines
    tasks = [line for line in lines if line.startswith('    {"key"')]
    assert len(tasks) == 2  # a task per line, whole
    assert json.loads(tasks[0].rstrip(","))["params"] == {"n": [1, 2]}
    assert json_text([1, {"a": [1, {"b": 2}]}]).splitlines() == [
        "[",
        "  1,",
        "  {",
        '    "a": [1, {"b": 2}]',
        "  }",
        "]",
    ]
    assert json_text(3) == "3" and json_text([]) == "[]"
