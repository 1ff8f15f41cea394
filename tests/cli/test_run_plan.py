"""``normandy run --dry-run``: the plan, for each selection of SPEC appendix A, and the
original command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def plan(normandy, project: Path, *args: str) -> dict:
    result = normandy("run", "--dry-run", "--json", *args, cwd=project)
    assert result.returncode == 0, result.output
    return json.loads(result.stdout)


def shape(data: dict) -> dict[str, list[tuple[str, list[str]]]]:
    return {
        f["name"]: [(s["name"], [t["name"] for t in s["tasks"]]) for s in f["steps"]]
        for f in data["flows"]
    }


MAIN = [("read", ["read_file"]), ("process", ["process_data"]), ("finish", ["prints"])]
ADD_INFO = [("read", ["read_file"]), ("process", ["add_data"])]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), {"main": MAIN}),
        (("--tags", "process", "--tags", "add_info"), {"main": MAIN, "add_info": ADD_INFO}),
        (
            ("--tags", "complete"),
            {"complete": [("read", ["read_file"]), ("process", ["process_data", "add_data"])]},
        ),
        (
            ("--tags", "complete", "--tags", "all"),
            {
                "main": MAIN,
                "add_info": ADD_INFO,
                "complete": [("read", ["read_file"]), ("process", ["add_data"])],
            },
        ),
        (
            ("--flow", "complete", "--tags", "all"),
            {"complete": [("read", ["read_file"]), ("process", ["add_data"])]},
        ),
        (
            ("--tags", "errors"),
            {
                "error_treatment": [
                    ("read", ["read_file_with_err"]),
                    ("process", ["process_data_with_err"]),
                ]
            },
        ),
    ],
)
def test_original_selections(normandy, original_project: Path, args, expected):
    data = plan(normandy, original_project, *args)
    assert shape(data) == expected
    assert list(shape(data)) == list(expected)  # file order


def test_text_plan(normandy, original_project: Path):
    result = normandy(
        "run", "--dry-run", "--tags", "complete", "--tags", "all", cwd=original_project
    )
    assert result.returncode == 0, result.output
    out = result.stdout
    assert out.startswith("Plan: 7 tasks in 3 flows (tags complete, all; env dev)")
    assert "step 2 process: 1 in parallel  (skipped by avoid_tags: process_data)" in out
    assert not (original_project / "logs").exists()
    assert not (original_project / "processed_dev").exists()


PARAMS_CONF = """
confs:
  plugins: [procs]
  envs: {dev: {}}
flows:
  f:
    tags: [default]
    params: {version: Andromeda, limit: 10, region: eu}
    steps:
      s:
        work:
          params: {limit: 100, mode: fast}
          iter_param: {name: location, values: [Thessia, Rannoch]}
          retries: 2
          timeout: 30
"""


def test_params_precedence_and_iter_param(normandy, make_project):
    root = make_project(
        PARAMS_CONF,
        {
            "procs.py": """
        from normandy_core import hookimpl

        @hookimpl
        def normandy_processes():
            return {"work": lambda params: None}
    """
        },
    )
    data = plan(
        normandy,
        root,
        "--param",
        "region=us",
        "--param",
        "limit=5",
        "--param",
        "flag=true",
        "--param",
        "ratio=0.5",
        "--param",
        "name='007'",
    )
    tasks = data["flows"][0]["steps"][0]["tasks"]
    assert [t["name"] for t in tasks] == ["work[Thessia]", "work[Rannoch]"]
    assert tasks[1]["params"] == {
        "version": "Andromeda",
        "limit": 5,
        "region": "us",
        "mode": "fast",
        "flag": True,
        "ratio": 0.5,
        "name": "007",
        "location": "Rannoch",
    }
    assert tasks[0]["retries"] == 2 and tasks[0]["timeout"] == 30


def test_bad_param_is_a_usage_error(normandy, original_project: Path):
    result = normandy("run", "--dry-run", "--param", "novalue", cwd=original_project)
    assert result.returncode == 2
    assert "'novalue' is not KEY=VALUE" in result.stderr


def test_nothing_selected_lists_tags_and_flows(normandy, original_project: Path):
    result = normandy("run", "--dry-run", "--tags", "weekly", cwd=original_project)
    assert result.returncode == 2
    assert "no flow has the tag weekly" in result.stderr
    assert "tags:  add_info, all, complete, default, errors, process" in result.stderr
    assert "flows: main, add_info, complete, error_treatment" in result.stderr


def test_unknown_flow(normandy, original_project: Path):
    result = normandy("run", "--dry-run", "--flow", "compelte", cwd=original_project)
    assert result.returncode == 2
    assert "unknown flow 'compelte' (did you mean 'complete'?)" in result.stderr


def test_original_command_line(normandy, original_project: Path):
    result = normandy(
        "--run-pipeline",
        "-tags",
        "complete",
        "-tags",
        "all",
        "-env",
        "prod",
        "-param",
        "version",
        "Trilogy",
        "-log-level",
        "warnings",
        "-threads",
        "4",
        "--dry-run",
        "--json",
        cwd=original_project,
    )
    assert result.returncode == 0, result.output
    assert "deprecated" in result.stderr
    assert (
        "normandy run --tags complete --tags all --env prod --param version=Trilogy "
        "--log-level warnings --workers 4"
    ) in result.stderr
    data = json.loads(result.stdout)
    assert data["env"] == "prod"
    assert list(shape(data)) == ["main", "add_info", "complete"]
    assert data["flows"][0]["steps"][0]["tasks"][0]["params"] == {"version": "Trilogy"}
