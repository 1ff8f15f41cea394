"""``normandy ui``'s application (:mod:`normandy_core.web`), in-process with Starlette's
TestClient, over the history of real runs of the real orchestrator: the runs and their
filters, a run, a task, its log, two runs compared, a variable previewed, the flows, a
run followed while it goes on; read-only, its own host only, never a credential."""

from __future__ import annotations

import html
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="pip install 'normandy[ui]' (the test extra has it)")
pytest.importorskip("pandas")

from starlette.testclient import TestClient  # noqa: E402

from normandy_core.errors import UiError  # noqa: E402
from normandy_core.testing._project import normandy_command  # noqa: E402
from normandy_core.web import _preview, create_app, require  # noqa: E402

SECRET = "tok-S3CRET-value-42"

PROCS = """
import time

import pandas as pd

from normandy_core import hookimpl


def make(params, pipe):
    print(f"using the token {pipe.credentials['token']}")
    n = params["rows"]
    return pd.DataFrame({"id": list(range(n)), "name": [f"row {i}" for i in range(n)]})


def count(table):
    return len(table)


def stash(pipe):
    return {"token": pipe.credentials["token"], "n": 1}


def boom():
    raise ValueError("3 rows have no id")


def slow():
    time.sleep(float(__import__("os").environ.get("SLOW", "4")))


@hookimpl
def normandy_processes():
    return {"make": make, "count": count, "stash": stash, "boom": boom, "slow": slow}
"""

CONF = f"""
confs:
  plugins: [webprocs]
  workers: 2
  cache: true
  envs:
    dev:
      credentials: conf/creds.yml
flows:
  data:
    tags: [default, nightly]
    steps:
      make:
        make: {{outputs: table, params: {{rows: 2, api: {SECRET}}}}}
      use:
        count: {{outputs: n}}
        stash: {{outputs: kept}}
  other:
    tags: [weekly]
    steps:
      s: [boom]
  long:
    tags: [slow]
    steps:
      s: [slow]
"""


def _run(root: Path, **selection: Any) -> str:
    from normandy_core.execution import RunOptions, run_plan
    from normandy_core.plan import Selection, build_plan
    from normandy_core.project import check_project, open_project

    project = open_project(root)
    checked = check_project(project)
    plan = build_plan(project.config, Selection(**selection))
    summary = run_plan(project, plan, checked, RunOptions(console=io.StringIO()))
    return summary.run.id


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A project and three runs: ``a`` (rows 2), ``b`` (the configuration changed to rows 3:
    make and count run again, stash is reused), ``c`` (flow other: fails)."""
    root = tmp_path_factory.mktemp("web") / "shop"
    (root / "pipeline").mkdir(parents=True)
    (root / "pipeline" / "pipeline_conf.yml").write_text(CONF)
    (root / "conf").mkdir()
    (root / "conf" / "creds.yml").write_text(f"token: {SECRET}\n")
    (root / "webprocs.py").write_text(textwrap.dedent(PROCS))
    path = list(sys.path)
    try:
        ids = {"a": _run(root)}
        conf = root / "pipeline" / "pipeline_conf.yml"
        conf.write_text(conf.read_text().replace("rows: 2", "rows: 3"))
        ids["b"] = _run(root)
        ids["c"] = _run(root, tags=("weekly",))
    finally:
        sys.path[:] = path
        sys.modules.pop("webprocs", None)
    yield root, ids


@pytest.fixture(scope="module")
def client(runs: tuple[Path, dict[str, str]]) -> Iterator[TestClient]:
    root, _ = runs
    with TestClient(create_app(root, hosts=("testserver",), poll=0.2)) as test_client:
        yield test_client


SEEN: list[str] = []
"""Every page fetched by these tests: none may show the credential."""


def _get(client: TestClient, url: str, status: int = 200) -> Any:
    response = client.get(url)
    assert response.status_code == status, (url, response.text[:500])
    SEEN.append(response.text)
    return response


def test_the_runs_and_their_filters(client, runs):
    _, ids = runs
    page = _get(client, "/").text
    for run_id in ids.values():
        assert f'href="/runs/{run_id}"' in page
    data = _get(client, "/runs.json").json()
    assert [r["id"] for r in data["runs"]] == [ids["c"], ids["b"], ids["a"]]
    by_id = {r["id"]: r for r in data["runs"]}
    assert by_id[ids["c"]]["status"] == "failed" and by_id[ids["a"]]["status"] == "succeeded"
    assert by_id[ids["a"]]["counts"] == {"succeeded": 3}
    assert by_id[ids["b"]]["counts"] == {"succeeded": 2, "cached": 1}
    assert all(r["size"] > 0 for r in data["runs"])  # variables and logs on disk
    assert by_id[ids["a"]]["flows_run"] == ["data"]

    def matching(query: str) -> list[str]:
        return [r["id"] for r in _get(client, f"/runs.json?{query}").json()["runs"]]

    assert matching("status=failed") == [ids["c"]]
    assert matching("flow=other") == [ids["c"]]
    assert matching("tag=nightly") == [ids["b"], ids["a"]]
    assert matching("tag=nightly&status=failed") == []
    page = _get(client, "/?status=failed").text
    assert ids["c"] in page and ids["a"] not in page
    assert '<option selected>failed</option>' in page


def test_a_run_its_tasks_and_why_they_ran(client, runs):
    _, ids = runs
    html = _get(client, f"/runs/{ids['b']}").text
    assert f"<h1>{ids['b']}</h1>" in html
    for key in ("data.make.make", "data.use.count", "data.use.stash"):
        assert f'data-key="{key}"' in html
    assert f"cached (from {ids['a']})" in html  # stash was reused
    assert '<svg class="timeline"' in html and '<svg class="graph"' in html  # shared partials
    assert f'href="/runs/{ids["b"]}/vars/data/table"' in html  # the variables, previewable

    data = _get(client, f"/runs/{ids['b']}.json").json()
    tasks = {t["key"]: t for t in data["tasks"]}
    assert tasks["data.make.make"]["reason"] == "params changed (rows: 2 → 3)"
    assert tasks["data.use.count"]["reason"] == "input changed (table)"
    assert tasks["data.use.stash"]["cached_from"] == ids["a"]
    writes = {w["name"]: w for w in tasks["data.make.make"]["writes"]}
    assert writes["table"]["size"] > 0 and writes["table"]["type"].endswith("DataFrame")

    # a task's details, as the page loads them when it opens
    url = f"/runs/{ids['b']}/task?key=data.make.make"
    fragment = _get(client, url + "&fragment=1").text
    assert fragment.startswith('<details class="task-row"')
    assert "ran: params changed (rows: 2 → 3)" in fragment
    assert '"api": "***"' in fragment.replace("&#34;", '"')  # a param holding a credential
    assert f'href="/runs/{ids["b"]}/vars/data/table"' in fragment
    assert "<html" not in fragment
    assert "<html" in _get(client, url).text  # a page of its own too
    assert _get(client, url.replace("/task?", "/task.json?")).json()["params"]["rows"] == 3

    log = _get(client, f"/runs/{ids['b']}/log?task=data.make.make").json()
    assert "using the token ***" in log["text"] and log["offset"] == log["size"] > 0
    more = _get(client, f"/runs/{ids['b']}/log?task=data.make.make&offset={log['offset']}")
    assert more.json()["text"] == ""

    failed = _get(client, f"/runs/{ids['c']}").text
    assert "What went wrong" in failed and "ValueError: 3 rows have no id" in failed


def test_two_runs_compared(client, runs):
    _, ids = runs
    diff = _get(client, f"/diff.json?a={ids['a']}&b={ids['b']}").json()
    changes = {t["key"]: t["changes"] for t in diff["tasks"]}
    assert changes == {
        "data.make.make": ["params changed (rows: 2 → 3)"],
        "data.use.count": ["input changed (table)"],
        "data.use.stash": [],
    }
    assert diff["run_changes"] == ["the plan changed (flows, steps, tasks or their options)"]
    html = _get(client, f"/diff?run={ids['b']}&run={ids['a']}").text  # as the runs page sends
    assert f"{ids['a']}</a> → <a" in html  # older first
    assert "params changed (rows: 2 → 3)" in html and "2 of 3 tasks differ" in html
    other = _get(client, f"/diff.json?a={ids['a']}&b={ids['c']}").json()
    assert {t["key"]: t["changes"] for t in other["tasks"]}["other.s.boom"] == [
        f"only in run {ids['c']}"
    ]
    assert "Choose two runs" in _get(client, "/diff").text


def test_a_variable_previewed(client, runs, monkeypatch):
    _, ids = runs
    table = _get(client, f"/runs/{ids['b']}/vars/data/table.json").json()
    assert table["type"] == "pandas.DataFrame" and table["shape"] == [3, 2]
    assert table["dtypes"] == [["id", "int64"], ["name", table["dtypes"][1][1]]]
    assert table["rows"] == [["0", "'row 0'"], ["1", "'row 1'"], ["2", "'row 2'"]]
    html = _get(client, f"/runs/{ids['b']}/vars/data/table").text
    assert "<th>name</th>" in html and "3 × 2" in html
    kept = _get(client, f"/runs/{ids['a']}/vars/data/kept.json").json()
    assert kept["text"] == "{'n': 1, 'token': '***'}"  # the value holds a credential
    monkeypatch.setattr(_preview, "SIZE_LIMIT", 10)
    big = _get(client, f"/runs/{ids['b']}/vars/data/table.json").json()
    assert big["error"].startswith("too big to preview here") and big["rows"] == []
    gone = _get(client, f"/runs/{ids['b']}/vars/data/nothing.json").json()
    assert "has no variable 'nothing'" in gone["error"]


def test_the_flows_with_their_data(client):
    html = _get(client, "/flows").text
    for key in ("data.make.make", "data.use.count", "other.s.boom", "long.s.slow"):
        assert f'data-task="{key}"' in html
    assert 'data-var="table"' in html and 'data-var="n"' in html
    flows = _get(client, "/flows.json").json()["flows"]
    assert [f["name"] for f in flows] == ["data", "other", "long"]


def test_read_only_its_own_host_never_a_credential(client, runs):
    _, ids = runs
    assert client.post("/").status_code == 405
    assert client.post(f"/runs/{ids['a']}").status_code == 405
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400
    response = _get(client, "/")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    missing = html.unescape(_get(client, "/runs/nosuchrun", 404).text)
    assert "no run 'nosuchrun' is recorded" in missing
    assert _get(client, "/runs/nosuchrun.json", 404).json()["error"].startswith("no run")
    _get(client, "/no/such/page", 404)
    assert SEEN and [page[:300] for page in SEEN if SECRET in page] == []


def test_a_run_followed_while_it_goes_on(client, runs):
    root, _ = runs
    process = subprocess.Popen(
        [*normandy_command(), "run", "--tags", "slow", "--no-progress"],
        cwd=root,
        env={**os.environ, "SLOW": "3"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        run_id = None
        deadline = time.monotonic() + 60
        while run_id is None and time.monotonic() < deadline:
            found = _get(client, "/runs.json?status=running").json()["runs"]
            run_id = found[0]["id"] if found else None
            time.sleep(0.1)
        assert run_id, "the run never showed up"
        assert 'data-live="1"' in _get(client, f"/runs/{run_id}").text
        events = []
        with client.stream("GET", f"/runs/{run_id}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                if line.startswith(("data:", "event:")):
                    events.append(line)
        states = [json.loads(e[5:]) for e in events if e.startswith("data:") and e != "data: {}"]
        assert states[0]["status"] == "running"
        assert states[-1]["status"] == "succeeded"
        assert states[-1]["tasks"]["long.s.slow"][0] == "succeeded"
        assert events[-2:] == ["event: end", "data: {}"]
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_without_its_extra_it_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(UiError, match=r"normandy ui needs uvicorn, which is not installed: "
                       r"pip install 'normandy\[ui\]'"):  # fmt: skip
        require()


def many_tasks_history(root: Path, count: int = 250) -> None:
    """A project at ``root`` whose history holds one run, ``big``, of ``count`` tasks in
    one step (the last one failed), written through the history's API as a run writes
    it."""
    from normandy_core.history import History, RunStart, TaskStart
    from normandy_core.outcomes import Outcome, TaskError
    from normandy_core.plan import Task

    (root / "pipeline").mkdir(parents=True)
    (root / "pipeline" / "pipeline_conf.yml").write_text(
        "confs: {envs: {dev: {}}}\nflows: {f: {tags: [default], steps: {s: [p]}}}\n"
    )
    tasks = [Task("f", "s", f"t{i:03d}", "p", {}) for i in range(count)]
    plan = [{"name": "f", "tags": [], "steps": [{"name": "s", "skipped": [], "tasks": [
        {"name": t.name, "key": t.key, "process": "p", "params": {}} for t in tasks]}]}]
    history = History(root / ".normandy")
    t0 = time.time() - 60
    history.start_run(
        RunStart("big", t0, (), (), {}, "dev", "local", 2, "1", "x", plan),
        [TaskStart(t.key, "f", "s", t.name, "p", {}) for t in tasks],
    )
    with history.batch():
        for i, task in enumerate(tasks):
            failed = i == count - 1
            status = "failed" if failed else "succeeded"
            error = TaskError("failed", "ValueError", "the last one") if failed else None
            began, ended = t0 + i * 0.01, t0 + i * 0.01 + 0.005
            history.attempt_started("big", task.key, 1, began)
            history.attempt_ended("big", task.key, 1, status, began, ended, 100 + i % 2, error)
            wrote = () if failed else (f"v{i:03d}",)
            history.task_ended(
                "big",
                Outcome(
                    task, status, attempts=1, started=began, ended=ended, error=error,
                    variables=wrote,
                ),
            )  # fmt: skip
    history.end_run("big", "failed", ended=t0 + 3)
    history.close()


def test_a_run_of_many_tasks_lists_what_went_wrong_first(tmp_path: Path):
    """A run of 250 tasks, written through the history's API: its page lists 200 of them,
    the failed one first; ``?tasks=all`` lists them all; its JSON has every one."""
    root = tmp_path / "big"
    many_tasks_history(root)
    with TestClient(create_app(root, hosts=("testserver",))) as client:
        page = _get(client, "/runs/big").text
        rows = page.count('<details class="task-row"')
        assert rows == 200 and "200 of 250 tasks shown" in page
        assert page.index('data-key="f.s.t249"') < page.index('data-key="f.s.t000"')
        # its timeline and flows are drawn apart, loaded by the page after it: the page
        # weighs what its rows weigh (2,000 tasks drew 630 KB in 300 ms)
        assert '<g class="bar"' not in page and 'class="graph' not in page
        assert 'data-part="/runs/big/timeline"' in page and 'data-part="/runs/big/flows"' in page
        timeline = _get(client, "/runs/big/timeline").text
        assert timeline.startswith('<div id="timeline-box">')
        assert timeline.count('<g class="bar"') == 250  # the timeline draws them all
        flows = _get(client, "/runs/big/flows").text
        assert flows.startswith('<div id="flows-box">') and "230 more tasks of step s" in flows
        # its variables too: as many as its tasks listed
        assert page.count('href="/runs/big/vars/f/v') == 200
        assert "200 of 249 variables shown" in page
        for part in ("timeline", "flows"):  # a run not recorded: said, not a traceback
            missing = client.get(f"/runs/nope/{part}")
            assert missing.status_code == 404 and "no run &#39;nope&#39;" in missing.text
            assert "Traceback" not in missing.text
        everything = _get(client, "/runs/big?tasks=all").text
        assert everything.count('<details class="task-row"') == 250
        assert everything.count('href="/runs/big/vars/f/v') == 249
        assert len(_get(client, "/runs/big.json").json()["tasks"]) == 250


def test_a_map_as_one_group_and_a_task_waiting_for_a_pool(tmp_path: Path):
    """SPEC 19 in the web app: the run page groups a map's elements (``t[*]``, but the one
    that failed) and shows the task waiting for a pool as such; its JSON lists every task."""
    from tests.core.test_report import mapped_history

    mapped_history(tmp_path).close()
    with TestClient(create_app(tmp_path, hosts=("testserver",), poll=0.2)) as client:
        page = _get(client, "/runs/r1").text
        data = _get(client, "/runs/r1.json").json()
    rows = re.findall(r'class="task-row" id="[^"]*" data-key="([^"]*)"', page)
    keys = [html.unescape(k) for k in rows]
    assert keys == ["f.s.t", "f.s.t[c]", "f.s.db"]
    assert "t[*]" in page and "2 succeeded, 1 failed; not collected" in page
    assert "waiting (pool db)" in page
    every = ["f.s.t", "f.s.t[a]", "f.s.t[b]", "f.s.t[c]", "f.s.db"]
    assert [t["key"] for t in data["tasks"]] == every
