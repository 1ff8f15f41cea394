"""A run's log files and console (SPEC 8): :class:`normandy_core.logs.RunLogs` routing
records, event lines kept off a console that a progress display owns, and workers' start
notices."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from normandy_core.logs import RunLogs, level_number, start_notice


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


def _logs(folder: Path, level: int = logging.INFO, **kwargs) -> tuple[RunLogs, io.StringIO]:
    console = io.StringIO()
    return RunLogs(folder, level, console, across_processes=False, **kwargs), console


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
