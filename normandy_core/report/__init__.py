"""Seeing a run after the fact: ``normandy report`` and ``normandy graph --format html``.

A report is one self-contained HTML file (inline CSS, JavaScript and SVG; it opens with no
network and no server) built from the run history and the run's log folder, so it can be
made for any recorded run: succeeded, failed, interrupted, still going, or whose logs were
deleted. :func:`collect` reads what it shows, :func:`render_report` turns that into HTML
without any I/O, through the Jinja2 templates of ``templates/`` (autoescaped; shared with
the web app, :mod:`normandy_core.web`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from normandy_core.errors import ReportError, display_path
from normandy_core.history import History
from normandy_core.report._data import Attempt, RunView, TaskView, collect, read_tail
from normandy_core.report._graph import layout as flows_layout
from normandy_core.report._page import render_report
from normandy_core.report._templates import render

__all__ = [
    "Attempt",
    "ReportError",
    "RunView",
    "TaskView",
    "collect",
    "default_output",
    "read_tail",
    "render_flows_page",
    "render_report",
    "write_report",
]


def default_output(root: Path, run_id: str) -> Path:
    """Where a run's report goes unless told: beside its logs."""
    return root / "logs" / run_id / "report.html"


def write_report(root: Path, run_id: str, output: Path | None = None) -> tuple[Path, RunView]:
    """Write the report of ``run_id`` (``last``: the most recent run) of the project at
    ``root``; return where it went and what it shows."""
    history = History(root / ".normandy")
    try:
        view = collect(history, run_id, root / "logs")
    finally:
        history.close()
    path = output or default_output(root, view.run.id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_report(view), encoding="utf-8")
    except OSError as exc:
        raise ReportError(
            f"cannot write the report to {display_path(path)}: {exc.strerror or exc}; "
            "choose another file with --output"
        ) from None
    return path, view


def render_flows_page(flows: Sequence[Mapping[str, Any]], title: str) -> str:
    """``flows`` (as in ``Plan.to_dict()["flows"]``) as a self-contained HTML page."""
    return render(
        "flows.html.j2",
        title=title,
        count=len(flows),
        picture=flows_layout(flows),
        generated=time.time(),
    )
