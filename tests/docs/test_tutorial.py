"""The tutorial works as written: docs/tutorial/first-pipeline.md is followed, block by
block, on a fresh folder, and every output it shows is compared with what the commands
print (its "Add a process" step failed as written once, and its samples had drifted).

A comment ``<!-- tutorial: ACTION [FILE] -->`` before a fenced block says what to do:

- ``run``: run its commands with bash, in the folder the last ``cd`` left (each must
  succeed); what they print, stdout and stderr together, is kept for ``output``;
- ``output``: the block's lines are lines of what the last ``run`` printed, one after
  the other — tolerant only of run ids, times, durations, worker pids and the folder
  the project is in;
- ``append FILE``: the block is added at the end of FILE;
- ``edit FILE``: the block's lines already in FILE place its new lines: each new line
  goes after the last line of the block before it found in FILE (``...`` stands for
  lines left out);
- ``excerpt FILE``: the block's lines are lines of FILE, one after the other;
- ``python``: the block runs in Python in the project; ``expression  # value`` checks
  that the expression's ``repr`` is ``value``.

``pip install`` lines are not run here: they would install the tutorial's project into
the environment of the tests. tests/docs/test_install.py runs them in a fresh one.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from normandy_core.testing._project import normandy_command

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "docs" / "tutorial" / "first-pipeline.md"

_BLOCK = re.compile(
    r"<!-- tutorial: (?P<action>[a-z]+)(?: (?P<file>[^\s>]+))? -->\n"
    r"```[a-z]*\n(?P<body>.*?)```",
    re.S,
)


@dataclass(frozen=True)
class Block:
    action: str
    file: str | None
    body: str
    line: int
    """Where the block starts in the page, for messages."""


def blocks(text: str) -> list[Block]:
    return [
        Block(m["action"], m["file"], m["body"], text.count("\n", 0, m.start()) + 1)
        for m in _BLOCK.finditer(text)
    ]


_RUN_ID = re.compile(r"\b\d{8}-\d{6}\.\d{3}-[0-9a-f]{4}\b")
_DURATION = re.compile(r"\b\d+(\.\d+)? ?s\b")
_CLOCK = re.compile(r"\b\d{2}:\d{2}:\d{2}\b")
_PROJECT = re.compile(r"(/[^\s'\"]*)?/my-pipelines\b")


def normalized(text: str) -> list[str]:
    """Lines as compared: run ids, times and paths made alike, spaces collapsed (a
    column's width follows its longest duration)."""
    text = _RUN_ID.sub("RUN", text)
    text = _DURATION.sub("Ns", text)
    text = _CLOCK.sub("HH:MM:SS", text)
    text = _PROJECT.sub("PROJECT", text)
    text = re.sub(r"worker \d+", "worker N", text)
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return [re.sub(r"-{2,}", "--", line) for line in lines]


def contains(printed: list[str], expected: list[str]) -> bool:
    """Whether ``expected`` are lines of ``printed``, one after the other."""
    n = len(expected)
    return any(printed[i : i + n] == expected for i in range(len(printed) - n + 1))


def _shims(folder: Path) -> dict[str, str]:
    """``normandy`` and ``python`` on PATH: this environment's."""
    folder.mkdir()
    for name, command in (("normandy", normandy_command()), ("python", [sys.executable])):
        shim = folder / name
        shim.write_text(f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n')
        shim.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_COLOR": "1",
        "COLUMNS": "100",
    }


class Reader:
    """Follows the page, block by block, in a folder of its own."""

    def __init__(self, home: Path) -> None:
        self.cwd = home / "work"
        self.cwd.mkdir()
        self.env = _shims(home / "bin")
        self.printed = ""

    def do(self, block: Block) -> None:
        getattr(self, block.action)(block)

    def where(self, block: Block) -> str:
        return f"{TUTORIAL.name}:{block.line} ({block.action} {block.file or ''})".rstrip()

    def run(self, block: Block) -> None:
        commands = [
            line
            for line in block.body.splitlines()
            if line.strip() and not line.strip().startswith("pip install")
        ]
        marker = "__cwd__ "
        script = "set -e\n" + "\n".join(commands) + f'\necho "{marker}$PWD"\n'
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{self.where(block)} failed:\n{done.stdout[-5000:]}"
        self.printed, _, cwd = done.stdout.rpartition(marker)
        self.cwd = Path(cwd.strip())

    def output(self, block: Block) -> None:
        expected, printed = normalized(block.body), normalized(self.printed)
        assert contains(printed, expected), (
            f"{self.where(block)}: the page shows\n{block.body}\nbut the commands printed\n"
            f"{self.printed[-5000:]}"
        )

    def append(self, block: Block) -> None:
        path = self.file(block)
        path.write_text(path.read_text().rstrip("\n") + "\n\n\n" + block.body)

    def edit(self, block: Block) -> None:
        path = self.file(block)
        lines = path.read_text().splitlines()
        at: int | None = None
        for line in block.body.splitlines():
            if line.strip() == "...":
                continue
            found = [i for i, old in enumerate(lines) if old.strip() == line.strip()]
            if found:
                at = next((i for i in found if at is None or i > at), found[-1])
                continue
            assert at is not None, f"{self.where(block)}: no line of it is in the file"
            at += 1
            lines.insert(at, line)
        path.write_text("\n".join(lines) + "\n")

    def excerpt(self, block: Block) -> None:
        lines = [line.rstrip() for line in self.file(block).read_text().splitlines()]
        expected = [line.rstrip() for line in block.body.splitlines()]
        assert contains(lines, expected), f"{self.where(block)}: not in {block.file}"

    def python(self, block: Block) -> None:
        code = []
        for line in block.body.splitlines():
            expression, _, value = line.partition("  # ")
            if value:
                shown = expression.strip()
                line = f"assert repr({shown}) == {value.strip()!r}, repr({shown})"
            code.append(line)
        done = subprocess.run(
            [sys.executable, "-c", "\n".join(code)],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{self.where(block)}:\n{done.stderr[-3000:]}"

    def file(self, block: Block) -> Path:
        assert block.file, f"{self.where(block)}: which file?"
        path = self.cwd / block.file
        assert path.is_file(), f"{self.where(block)}: no {block.file} in {self.cwd}"
        return path


def test_the_tutorial_works_as_written(tmp_path: Path) -> None:
    steps = blocks(TUTORIAL.read_text(encoding="utf-8"))
    # the page's shape, so that a block that lost its comment is noticed
    assert [b.action for b in steps].count("run") >= 5 and "python" in [b.action for b in steps]
    reader = Reader(tmp_path)
    for block in steps:
        reader.do(block)
    assert (reader.cwd / "data" / "prod" / "out" / "report.csv").is_file()  # the last step


def test_the_comparison_is_tolerant_only_of_ids_times_and_paths() -> None:
    printed = textwrap.dedent("""
        orders  upload  upload_database   succeeded  1  0.02s
        7 tasks in 12.68s: 7 done
        run 20261207-135040.726-f1a5 succeeded; logs in logs/20261207-135040.726-f1a5
        wrote /tmp/x/my-pipelines/data/dev/out/report.csv
    """)
    expected = textwrap.dedent("""
        orders  upload     upload_database  succeeded  1         0.04s
        7 tasks in 0.68s: 7 done
        run 20261130-210730.832-ad9d succeeded; logs in logs/20261130-210730.832-ad9d
        wrote /home/you/my-pipelines/data/dev/out/report.csv
    """)
    assert contains(normalized(printed), normalized(expected))
    assert not contains(normalized(printed), normalized(expected.replace("7 done", "6 done")))
    assert not contains(normalized(printed), normalized(expected.replace("upload ", "load ")))
