"""A run's log files (SPEC 8): :class:`normandy_core.logs.RunLogs` routing records."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from normandy_core.logs import RunLogs, level_number


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
