"""A run's log files and console (:mod:`normandy_core.logs`): where records go, event lines
kept off a console that a progress display owns, and workers' start notices."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from normandy_core.logs import RunLogs, start_notice


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
