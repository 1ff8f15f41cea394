"""A run's log files and console (SPEC 8): :class:`normandy_core.logs.RunLogs` routing
records and tasks' lines, event lines kept off a console that a progress display owns,
workers' start notices, and what cannot be logged (reported, never a dead log thread)."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import pytest

from normandy_core.logs import (
    RunLogs,
    level_number,
    lines_message,
    lines_records,
    start_notice,
)


def test_records_go_to_run_flow_and_task_files_and_the_console(tmp_path: Path):
    console = io.StringIO()
    logs = RunLogs(tmp_path, logging.INFO, console, across_processes=False)
    logs.log(logging.INFO, "run started")
    logs.log(logging.INFO, "flow started", flow="main")
    logs.log(logging.WARNING, "task says", flow="main", key="main.load.users[eu]")
    logs.log(logging.DEBUG, "below the level")
    logs.close()

    run_log = (tmp_path / "run.log").read_text()
    assert ["run started" in run_log, "flow started" in run_log, "task says" in run_log] == [
        True
    ] * 3
    assert "below the level" not in run_log
    flow_log = (tmp_path / "flow-main.log").read_text()
    assert "run started" not in flow_log and "task says" in flow_log
    task_log = (tmp_path / "process-main.load.users[eu].log").read_text()
    assert task_log.splitlines()[0].endswith("WARNING main.load.users[eu] | task says")
    assert console.getvalue().count("\n") == 3


def test_thousands_of_task_files_never_keep_more_than_a_few_open(tmp_path: Path):
    logs = RunLogs(tmp_path, logging.INFO, None, across_processes=False)
    router = logs.router
    tasks = [f"f.s.t{i}" for i in range(3 * router.MAX_OPEN)]
    for round_ in range(2):  # the second round reopens closed files in append mode
        for key in tasks:
            logs.log(logging.INFO, f"line {round_}", flow="f", key=key)
    logs.queue.join()  # every record handled
    assert len(router.files) <= router.MAX_OPEN
    logs.close()
    for key in tasks:
        lines = (tmp_path / f"process-{key}.log").read_text().splitlines()
        assert [line.rsplit("| ", 1)[1] for line in lines] == ["line 0", "line 1"]


@pytest.mark.parametrize(
    ("name", "level"),
    [("warnings", logging.WARNING), ("errors", logging.ERROR), ("DEBUG", logging.DEBUG)],
)
def test_level_names_of_the_original_normandy_and_the_standard_ones(name, level):
    assert level_number(name) == level


def test_an_unknown_level_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown log level 'loud'; use one of: debug, info"):
        level_number("loud")


def _logs(
    folder: Path, level: int = logging.INFO, across_processes: bool = False, **kwargs
) -> tuple[RunLogs, io.StringIO]:
    console = io.StringIO()
    return RunLogs(folder, level, console, across_processes, **kwargs), console


def test_a_start_notice_is_filed_in_order_and_passed_on(tmp_path: Path):
    seen = []
    logs, console = _logs(tmp_path, on_started=lambda *notice: seen.append(notice))
    logs.queue.put(start_notice("f", "f.s.t", 2, 1234, 1000.0))
    logs.log(logging.INFO, "a line of the task", flow="f", key="f.s.t")
    logs.close()
    assert seen == [("f.s.t", 2, 1234, 1000.0)]
    lines = (tmp_path / "process-f.s.t.log").read_text().splitlines()
    assert lines[0].endswith("INFO    f.s.t | attempt 2 started on worker 1234")
    assert lines[1].endswith("f.s.t | a line of the task")
    assert "attempt 2 started" in (tmp_path / "flow-f.log").read_text()
    assert "attempt 2 started" in console.getvalue()  # event lines echoed by default


def test_a_start_notice_below_the_level_is_passed_on_but_not_filed(tmp_path: Path):
    seen = []
    logs, console = _logs(tmp_path, logging.WARNING, on_started=lambda *n: seen.append(n))
    logs.queue.put(start_notice("f", "f.s.t", 1, 99, 5.0))
    logs.close()
    assert seen == [("f.s.t", 1, 99, 5.0)]
    assert not (tmp_path / "run.log").exists()  # nothing was filed
    assert console.getvalue() == ""


def test_event_lines_stay_off_a_console_a_display_owns(tmp_path: Path):
    logs, console = _logs(tmp_path, console_events=False)
    logs.queue.put(start_notice("f", "f.s.t", 1, 99, 5.0))
    logs.log(logging.INFO, "flow f started", flow="f", event=True)
    logs.log(logging.ERROR, "FAILED after 1 attempt(s)", flow="f", key="f.s.t", event=True)
    logs.log(logging.INFO, "what the process said", flow="f", key="f.s.t")
    logs.log(logging.ERROR, "a hook failed")
    logs.close()
    shown = console.getvalue()
    assert "what the process said" in shown and "a hook failed" in shown
    for event in ("started on worker", "flow f started", "FAILED"):
        assert event not in shown
        assert event in (tmp_path / "run.log").read_text()  # the files keep everything


# -- what cannot be logged ----------------------------------------------------------------------


def _lines(key: str, *messages: str, level: int = logging.INFO) -> tuple:
    flow, step, task = key.split(".", 2)
    return lines_message((flow, step, task, key), level, logging.getLevelName(level), 5.0,
                         list(messages))


def test_a_record_that_cannot_be_filed_stops_nothing(tmp_path: Path):
    logs, console = _logs(tmp_path)
    broken = logging.makeLogRecord({"msg": "%d apples", "args": ("many",), "levelno": 20})
    logs.queue.put(broken)
    logs.log(logging.INFO, "filed after it", flow="f", key="f.s.t")
    logs.close()
    assert "filed after it" in (tmp_path / "run.log").read_text()
    [problem] = logs.problems
    assert problem.startswith("log lines were lost: TypeError")
    assert f"normandy: warning: {problem}" in console.getvalue()


def test_a_log_file_that_cannot_be_written_is_reported_once(tmp_path: Path):
    (tmp_path / "process-f.s.t.log").mkdir()  # where the task's file should be
    logs, console = _logs(tmp_path)
    for n in range(3):
        logs.queue.put(_lines("f.s.t", f"line {n}"))
        logs.queue.put(_lines("f.s.u", f"other {n}"))
        logs.queue.join()
        logs.router.flush()
    logs.close()
    [problem] = logs.problems
    assert "cannot write " in problem and "process-f.s.t.log: Is a directory" in problem
    assert console.getvalue().count("normandy: warning: cannot write") == 1
    assert (tmp_path / "run.log").read_text().count("line ") == 3  # the others go on
    assert (tmp_path / "process-f.s.u.log").read_text().count("other ") == 3
    assert console.getvalue().count("| line ") == 3  # and the console


def test_a_console_that_fails_is_dropped_and_said_on_stderr(tmp_path: Path, capsys):
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    logs = RunLogs(tmp_path, logging.INFO, Closed(), across_processes=False)
    logs.log(logging.INFO, "one")
    logs.queue.join()
    logs.router.flush()
    logs.log(logging.INFO, "two")
    logs.close()
    assert (tmp_path / "run.log").read_text().count(" | ") == 2
    [problem] = logs.problems
    assert problem == "cannot write to the console: BrokenPipeError: [Errno 32] Broken pipe"
    assert f"normandy: warning: {problem}" in capsys.readouterr().err


# -- a task's lines -------------------------------------------------------------------------------


def test_lines_are_filed_each_as_a_record_in_order(tmp_path: Path):
    logs, console = _logs(tmp_path)
    logs.queue.put(_lines("f.s.a", "a1", "a2"))
    logs.queue.put(_lines("f.s.b", "b1"))
    logs.queue.put(_lines("f.s.a", "a3", level=logging.WARNING))
    logs.queue.put(_lines("f.s.a", "a4"))
    logs.close()
    heads = [line.split(" | ")[0][9:] for line in console.getvalue().splitlines()]
    said = [line.split(" | ")[1] for line in console.getvalue().splitlines()]
    assert said == ["a1", "a2", "b1", "a3", "a4"]
    assert heads[:3] == ["INFO    f.s.a", "INFO    f.s.a", "INFO    f.s.b"]
    assert heads[3] == "WARNING f.s.a"
    own = (tmp_path / "process-f.s.a.log").read_text().splitlines()
    assert [line.split(" | ")[1] for line in own] == ["a1", "a2", "a3", "a4"]
    assert (tmp_path / "run.log").read_text() == console.getvalue()


def test_lines_reach_the_files_while_the_run_goes_on(tmp_path: Path):
    logs, console = _logs(tmp_path, across_processes=True)
    logs.queue.put(_lines("f.s.t", "soon in the file"))
    deadline = time.monotonic() + 30
    path = tmp_path / "process-f.s.t.log"
    while not (path.exists() and "soon in the file" in path.read_text()):
        assert time.monotonic() < deadline, "the line was held back"
        time.sleep(0.01)
    assert "soon in the file" in console.getvalue()
    logs.close()


def test_lines_become_records_for_who_needs_records():
    [first, second] = lines_records(_lines("f.s.t[x.y]", "one", "two"))
    assert (first.flow, first.step, first.task, first.key) == ("f", "s", "t[x.y]", "f.s.t[x.y]")
    assert (first.getMessage(), second.getMessage()) == ("one", "two")
    assert first.levelname == "INFO" and first.created == 5.0
