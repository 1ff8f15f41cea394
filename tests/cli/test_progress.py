"""``normandy run``'s progress and summary (SPEC 9), end to end: one line per event when
stderr is not a terminal (or with --no-progress), the live view on a real pseudo-terminal,
and the summary (table, closing line, --json) that ends every run."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from tests.conftest import normandy_command

PROCS = """
import time

from normandy_core import hookimpl


def ok(pipe, params):
    time.sleep(params.get("sleep", 0))
    print(f"{pipe.task} says hi")


def flaky(pipe):
    marker = pipe.path / f"flaky-{pipe.run_id}"
    if not marker.exists():
        marker.write_text("1")
        raise ConnectionError("the server did not answer")


def boom(pipe):
    if not (pipe.path / "fixed").exists():
        raise RuntimeError("boom: the process exploded")


@hookimpl
def normandy_processes():
    return {"ok": ok, "flaky": flaky, "boom": boom, "soft": boom}
"""

CONF = """
confs:
  plugins: [procs]
  workers: 2
  envs:
    dev: {}
flows:
  f:
    tags: [default]
    steps:
      s1:
        ok:
        flaky: {retries: 1}
      s2: [boom]
      s3: [ok]
  g:
    tags: [default]
    steps:
      only: [ok]
"""

EVENT = re.compile(r"^(\d\d:\d\d:\d\d) \[(\d+)/(\d+)\] (.*)$")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@pytest.fixture
def project(make_project):
    def make(conf: str = CONF) -> Path:
        return make_project(conf, {"procs.py": PROCS})

    return make


def events(stderr: str) -> list[tuple[int, int, str]]:
    """The progress lines: (finished, total, text)."""
    out = []
    for line in stderr.splitlines():
        match = EVENT.match(line)
        if match:
            out.append((int(match[2]), int(match[3]), match[4]))
    return out


def test_plain_progress_is_one_line_per_event(normandy, project):
    root = project()
    result = normandy("run", cwd=root)  # stderr is a pipe, not a terminal
    assert result.returncode == 1, result.output
    lines = events(result.stderr)
    texts = [text for _, _, text in lines]
    run_id = texts[0].split()[1].rstrip(":")

    def at(prefix: str) -> int:
        [index] = [i for i, t in enumerate(texts) if t.startswith(prefix)]  # exactly once
        return index

    assert texts[0] == f"run {run_id}: 5 tasks in 2 flows, env dev, executor local, 2 workers"
    assert at("flow f started: 3 steps, 4 tasks") < at("step f.s1 started: 2 tasks")
    assert at("step f.s1 started") < at("f.s1.ok started (worker ") < at("f.s1.ok succeeded in ")
    flaky = [t for t in texts if t.startswith("f.s1.flaky")]
    assert [re.sub(r"worker \d+", "worker N", re.sub(r"\d+\.\d\ds", "Xs", t)) for t in flaky] == [
        "f.s1.flaky started (worker N)",
        "f.s1.flaky attempt 1 failed (failed): ConnectionError: the server did not answer; "
        "retrying in 0s",
        "f.s1.flaky started (worker N, attempt 2)",
        "f.s1.flaky succeeded in Xs (2 attempts)",
    ]
    assert at("f.s1.ok succeeded") < at("step f.s1 ended") < at("step f.s2 started: 1 task")
    assert at("f.s2.boom FAILED after 1 attempt (failed): RuntimeError: boom: the process")
    assert at("step f.s2 failed") < at("flow f failed; its later steps did not start (1 task")
    assert at("flow g not started: an earlier flow failed (use --keep-going")
    assert not any(t.startswith(("step f.s3", "f.s3.ok", "g.only")) for t in texts)
    # the count of finished tasks only grows, out of the same total, and reaches it
    assert {total for _, total, _ in lines} == {5}
    finished = [n for n, _, _ in lines]
    assert finished == sorted(finished) and finished[-1] == 5
    # the traceback follows its failure, indented; the process's own lines are there too
    err = result.stderr
    assert '    raise RuntimeError("boom: the process exploded")' in err
    assert err.index("f.s2.boom FAILED") < err.index("Traceback (most recent call last)")
    assert "f.s1.ok | ok says hi" in err
    # the run's own log lines are not repeated on the console (they are in run.log)
    assert "| succeeded in" not in err and "| flow f started" not in err
    assert "| flow f started" in (root / "logs" / run_id / "run.log").read_text()
    # the summary ends the run, then the closing lines
    tail = err[err.index("FLOW  ") :]
    assert re.search(r"f\s+s2\s+boom\s+failed\s+1\s+\d+\.\d\ds", tail)
    assert re.search(r"g\s+only\s+ok\s+not started\s+0\s+-", tail)
    assert re.search(r"\n5 tasks in \d+\.\d\ds: 2 done, 1 failed, 0 tolerated, 2 skipped\n", tail)
    assert f"\nrun {run_id} failed; logs in logs/{run_id}\n" in tail
    assert f"see what happened: normandy report {run_id}" in tail
    assert tail.rstrip().endswith(f"fix the cause, then: normandy run --resume {run_id}")


def test_plain_progress_of_a_resumed_run(normandy, project):
    root = project()
    first = normandy("run", cwd=root)
    assert first.returncode == 1, first.output
    (root / "fixed").write_text("")
    result = normandy("run", "--resume", "last", cwd=root)
    assert result.returncode == 0, result.output
    texts = [t for _, _, t in events(result.stderr)]
    run_id = events(first.stderr)[0][2].split()[1].rstrip(":")
    for key in ("f.s1.ok", "f.s1.flaky"):  # one line each, as every reused task is shown
        assert [t for t in texts if t.startswith(f"{key} ")] == [f"{key} cached (from {run_id})"]
    assert "FAILED" not in result.stderr
    assert re.search(rf"f\s+s1\s+ok\s+cached \(from {run_id}\)", result.stderr)
    assert any(t.startswith("f.s2.boom succeeded in") for t in texts)
    assert "5 tasks in " in result.stderr and (
        ": 3 done, 2 cached, 0 failed, 0 tolerated, 0 skipped\n" in result.stderr
    )
    assert f"(resuming {run_id}) succeeded; logs in" in result.stderr


def test_json_summary_for_schedulers(normandy, project):
    root = project(CONF.replace("s2: [boom]", "s2: [{soft: {error_tolerance: true}}]"))
    result = normandy("run", "--json", cwd=root)
    assert result.returncode == 0, result.output
    data = json.loads(result.stdout)  # stdout holds the JSON only
    assert data["status"] == "succeeded"
    assert data["counts"] == {"succeeded": 4, "tolerated": 1}
    assert data["failing_task"] is None
    assert data["started"] <= data["ended"] and data["duration"] >= 0
    tasks = {t["key"]: t for t in data["tasks"]}
    assert tasks["f.s1.flaky"]["attempts"] == 2
    assert tasks["f.s2.soft"]["tolerated"] is True
    assert tasks["f.s2.soft"]["error"]["type"] == "RuntimeError"
    assert all(t["pid"] and t["started"] <= t["ended"] for t in data["tasks"])
    assert "FLOW" in result.stderr  # the table too, on stderr


# -- on a terminal ------------------------------------------------------------------------


def run_in_terminal(args: list[str], cwd: Path, timeout: float = 90) -> tuple[int, str]:
    """Run ``normandy`` with a pseudo-terminal as stdin, stdout and stderr; return its exit
    status and everything it wrote to the terminal (escape sequences included)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "40"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [*normandy_command(), *args], cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        else:
            proc.kill()
            pytest.fail("normandy did not finish on the terminal")
        return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(master)


LIVE_CONF = """
confs:
  plugins: [procs]
  workers: 2
  envs:
    dev: {}
flows:
  f:
    tags: [default]
    steps:
      s1:
        ok: {params: {sleep: 3.0}}
        flaky: {retries: 1}
        soft: {error_tolerance: true}
      s2: [ok]
"""


def test_live_view_on_a_terminal(project):
    root = project(LIVE_CONF)
    code, raw = run_in_terminal(["run"], root)
    assert code == 0, raw
    assert "\x1b[2K" in raw or "\x1b[1A" in raw  # the view is redrawn in place
    screen = ANSI.sub("", raw)
    # the live view: where the run stands, each running task with its elapsed time and
    # worker, the counts and the bar
    assert "flow f (1/1) › step s1 (1/2)" in screen
    # (ok runs for 3 s: under load its start reaches the view a second or more late, and
    # the view must have drawn it running at least once)
    assert re.search(r"\bok\s+\d+\.\ds\s+worker \d+", screen), screen
    assert re.search(r"\d/4 tasks\s+\d done\s+\d failed\s+\d tolerated\s+\d skipped", screen)
    assert "━" in screen
    # what happened is printed above it and stays
    assert "↻ f.s1.flaky attempt 1 failed (failed): ConnectionError" in screen
    assert "⚠ f.s1.soft failed (tolerated) after 1 attempt (failed): RuntimeError" in screen
    assert re.search(r"✔ f\.s1\.ok  3\.\d\ds", screen)
    assert "f.s1.ok | ok says hi" in screen  # a process's own line
    # ...and it still ends with the summary, after the last frame of the view
    summary = screen.rindex("FLOW")
    assert screen.rindex("━") < summary
    table = screen[summary:]
    for column in ("STEP", "TASK", "STATUS", "ATTEMPTS", "DURATION"):
        assert column in table
    assert re.search(r"f\s+s1\s+flaky\s+succeeded\s+2\b", table)
    assert re.search(r"f\s+s1\s+soft\s+failed \(tolerated\)\s+1\b", table)
    assert re.search(
        r"4 tasks in \d+\.\d\ds: 3 done, 0 failed, 1 tolerated, 0 skipped\s+"
        r"run \S+ succeeded; logs in logs/\S+\s*$",
        table,
    )


def test_no_progress_on_a_terminal_gives_plain_lines(project):
    root = project(LIVE_CONF)
    code, raw = run_in_terminal(["run", "--no-progress"], root)
    assert code == 0, raw
    screen = ANSI.sub("", raw)
    assert "━" not in screen
    lines = events(screen)
    assert lines and lines[-1][0] == lines[-1][1] == 4
    assert any(t.startswith("f.s1.ok started (worker ") for _, _, t in lines)


# -- what processes write, on a terminal ---------------------------------------------------------

ESCAPING = """
from normandy_core import hookimpl


def noisy(log):
    print("clear \\x1b[2J the screen")
    print("retitle \\x1b]0;pwned\\x07 the window")
    log.warning("8-bit \\x9b31m csi, del \\x7f, nul \\x00, bell \\x07, a\\ttab")
    raise RuntimeError("blink \\x1b[5m in an error")


@hookimpl
def normandy_processes():
    return {"noisy": noisy}
"""

NOISY = """
confs:
  plugins: [procs]
  envs:
    dev: {}
flows:
  f:
    tags: [default]
    steps:
      s: [noisy]
"""

RAW = ["\x1b[2J", "\x1b]0;pwned", "\x9b31m", "\x7f", "\x00", "\x07", "\x1b[5m"]
ESCAPED = [
    "clear \\x1b[2J the screen",
    "retitle \\x1b]0;pwned\\x07 the window",
    "8-bit \\x9b31m csi, del \\x7f, nul \\x00, bell \\x07, a",  # the tab: rich expands it
    "blink \\x1b[5m in an error",
]


@pytest.mark.parametrize("args", [["run"], ["run", "--no-progress"]], ids=["live", "plain"])
def test_a_processs_escape_sequences_reach_a_terminal_escaped(make_project, args):
    """A clear-screen printed by a task went through to the terminal."""
    root = make_project(NOISY, {"procs.py": ESCAPING})
    code, raw = run_in_terminal(args, root)
    assert code == 1, raw
    for sequence in RAW:
        assert sequence not in raw, sequence
    for text in ESCAPED:
        assert text in raw, text
    [task_log] = (root / "logs").glob("*/process-f.s.noisy.log")
    written = task_log.read_text()
    assert "clear \x1b[2J the screen" in written  # the log files keep what was written
    assert "8-bit \x9b31m csi, del \x7f, nul \x00, bell \x07, a\ttab" in written


def test_a_processs_escape_sequences_are_kept_off_a_terminal(normandy, make_project):
    root = make_project(NOISY, {"procs.py": ESCAPING})
    result = normandy("run", cwd=root)  # stderr is a pipe: the text as written
    assert result.returncode == 1, result.output
    assert "clear \x1b[2J the screen" in result.stderr


def test_printable_escapes_what_a_terminal_acts_on_and_nothing_else():
    from normandy_cli._progress import printable

    assert printable("plain text, é, 東京, a\ttab\nand lines") == (
        "plain text, é, 東京, a\ttab\nand lines"
    )
    assert printable("\x1b[2J\r\x00\x7f\x9b\x85") == "\\x1b[2J\\x0d\\x00\\x7f\\x9b\\x85"


def test_pools_and_maps_in_the_progress_and_its_live_view() -> None:
    """In process, events as the scheduler tells them: a task waiting for a pool, a map's
    elements shown as one group (their failures one by one), plain and live."""
    import io
    from types import MappingProxyType

    from rich.console import Console

    from normandy_cli._live import LiveProgress
    from normandy_cli._progress import PlainProgress
    from normandy_core.config import MapSpec
    from normandy_core.outcomes import Outcome, RunInfo, TaskError
    from normandy_core.plan import Element, Flow, Plan, Selection, Step, Task, element_task

    spec = MapSpec("files")
    mapped = Task("f", "each", "handle", "handle", MappingProxyType({}), map=spec)
    db = Task("f", "each", "load", "load", MappingProxyType({}), pools=MappingProxyType({"db": 1}))
    flow = Flow("f", ("default",), (Step("f", "each", (mapped, db)),))
    elements = tuple(
        element_task(mapped, Element("f.each.handle", "files", key, i, key))
        for i, key in enumerate(["a", "b", "c"])
    )

    def ended(task: Task, status: str, error: TaskError | None = None) -> Outcome:
        return Outcome(task, status, attempts=1, started=1.0, ended=2.0, error=error)

    run = RunInfo("r1", Plan((flow,), Selection()), "dev", Path("."), "local", 2)
    for progress in (PlainProgress(io.StringIO()), LiveProgress(io.StringIO())):
        progress.run_started(run)
        progress.flow_started(flow)
        progress.step_started(flow.steps[0])
        progress.task_waiting(db, "db")
        progress.task_mapped(mapped, elements)
        for element in elements[:2]:
            progress.task_submitted(element, 1)
            progress.task_started(element, 1, 4242, time.time())
        progress.task_ended(ended(elements[0], "succeeded"))
        assert progress.total == 4  # the elements and the other task, not the mapped task
        if isinstance(progress, LiveProgress):
            out = io.StringIO()
            Console(file=out, width=120, color_system=None).print(progress._render())
            shown = out.getvalue()
            assert "load" in shown and "waiting (pool db)" in shown
            assert "handle[*]" in shown and "1/3" in shown and "1 done" in shown
        progress.task_ended(ended(elements[1], "failed", TaskError("failed", "ValueError", "x")))
        progress.task_ended(ended(elements[2], "succeeded"))
        group = ended(mapped, "mapped", TaskError("failed", "ElementsFailed", "1 of 3"))
        progress.task_ended(group)
        assert progress.finished == 3 and progress.counts["done"] == 2
        if isinstance(progress, PlainProgress):
            progress.waiting()  # its lines are out once the orchestrator waits
            lines = progress.stream.getvalue()  # type: ignore[attr-defined]
            assert "f.each.load waiting (pool db)" in lines
            assert "f.each.handle mapped over files: 3 tasks" in lines
            assert "f.each.handle[b] FAILED after 1 attempt (failed): ValueError: x" in lines
            assert "f.each.handle[a] succeeded" not in lines  # a group: its failures alone
            assert "f.each.handle[*]: 2 done, 1 failed; its outputs were not collected" in lines
        else:
            pending = " ".join(text.plain for text in progress.pending)
            assert "f.each.handle[*]: 2 done, 1 failed" in pending
            assert "f.each.handle[a]" not in pending and "f.each.handle[b] FAILED" in pending


def test_the_live_view_shows_a_reused_task_as_cached(tmp_path):
    """Events of a reused task (as ``--resume`` and ``cache: true`` emit them) in the live
    view: one line, ``≡ KEY cached (from RUN_ID)``, never a failure's ✖."""
    import io

    from normandy_cli._live import LiveProgress
    from normandy_core.outcomes import Outcome
    from normandy_core.plan import Task

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for resumed in (False, True):
        live = LiveProgress(Terminal())
        task = Task("f", "s1", "p", "p", {})
        if resumed:
            live.task_resumed(task, "20261201-000000.000-abcd")
        else:
            live.task_cached(task, "20261201-000000.000-abcd")
        outcome = Outcome(task)
        outcome.status, outcome.cached_from, outcome.resumed = (
            "cached",
            "20261201-000000.000-abcd",
            resumed,
        )
        live.task_ended(outcome)
        lines = [line.plain for line in live.pending]
        assert lines == ["≡ f.s1.p cached (from 20261201-000000.000-abcd)"], lines
        assert live.counts["cached"] == 1


def test_plain_lines_are_held_until_the_orchestrator_waits_and_keep_their_order():
    """The plain view writes its event lines together when the orchestrator is about to
    wait for its tasks (a write per event cost a fifth of a no-op task); a line a
    process logged meanwhile comes after them, as it happened after them."""
    import io

    from normandy_cli._progress import PlainProgress

    stream = io.StringIO()
    progress = PlainProgress(stream)
    progress._line("f.s.a started (worker 1)")
    progress._line("f.s.b started (worker 2)")
    assert stream.getvalue() == ""  # held
    progress.write("a line of f.s.a\n")  # from the log thread: after what was held
    progress._line("f.s.a succeeded in 0.01s")
    progress.waiting()
    text = stream.getvalue()
    order = ["f.s.a started", "f.s.b started", "a line of f.s.a", "f.s.a succeeded"]
    assert [text.index(x) for x in order] == sorted(text.index(x) for x in order)
    progress._line("interrupted")
    with progress:
        pass
    assert stream.getvalue().endswith("interrupted\n")  # out at the end, whatever happened
