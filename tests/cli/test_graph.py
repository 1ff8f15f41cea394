"""``normandy graph`` in each format."""

from __future__ import annotations

import json
import re
from pathlib import Path


def test_text(normandy, original_project: Path):
    result = normandy("graph", "--flow", "complete", cwd=original_project)
    assert result.returncode == 0, result.output
    assert result.stdout.splitlines() == [
        "complete  [complete]",
        "├─ read",
        "│   • read_file",
        "│       out: main_df",
        "└─ process",
        "    • process_data",
        "        in:  main_df",
        "    • add_data",
        "        in:  main_df",
    ]


def test_all_flows_by_default(normandy, original_project: Path):
    result = normandy("graph", "--format", "json", cwd=original_project)
    assert [f["name"] for f in json.loads(result.stdout)["flows"]] == [
        "main",
        "add_info",
        "complete",
        "error_treatment",
    ]


def test_mermaid(normandy, original_project: Path):
    result = normandy(
        "graph", "--format", "mermaid", "--tags", "complete", "--tags", "all", cwd=original_project
    )
    assert result.returncode == 0, result.output
    out = result.stdout
    assert out.startswith("flowchart LR")
    assert "s_complete_read -.-> s_complete_process" in out  # the order of steps
    assert 't_complete_process_add_data["add_data"]' in out
    assert "t_complete_process_process_data" not in out  # avoided by the tag all


def test_dot(normandy, original_project: Path):
    result = normandy("graph", "--format", "dot", "--flow", "main", cwd=original_project)
    assert result.returncode == 0, result.output
    assert result.stdout.startswith("digraph normandy {")
    assert '"main.read.read_file" -> "main.process.process_data"' in result.stdout
    assert result.stdout.rstrip().endswith("}")


def test_bad_format(normandy, original_project: Path):
    result = normandy("graph", "--format", "png", cwd=original_project)
    assert result.returncode == 2
    assert "png" in result.stderr


def test_html(normandy, original_project: Path):
    result = normandy(
        "graph", "--format", "html", "--tags", "complete", "--tags", "all", cwd=original_project
    )
    assert result.returncode == 0, result.output
    page = result.stdout
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<title>Normandy — Flows: main, add_info, complete</title>" in page
    assert '<svg class="graph"' in page
    tasks = re.findall(r'<g class="task-node" data-task="([^"]+)"', page)
    assert tasks == [
        "main.read.read_file",
        "main.process.process_data",
        "main.finish.prints",
        "add_info.read.read_file",
        "add_info.process.add_data",
        "complete.read.read_file",
        "complete.process.add_data",
    ]
    assert "process_data (avoid_tags)" in page  # left out of `complete` by the tag all
    assert page.count('class="edge"') == 2 + 1 + 1  # arrows between steps
    # self-contained: inline style and script, nothing fetched
    assert "<style>" in page and "<script>" in page
    for outside in ("<link", " src=", "@import", "https://", "url(http"):
        assert outside not in page
