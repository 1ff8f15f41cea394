"""``normandy ui`` end to end: the real command serving a project's real runs, read in a
real browser (Debian's chromium, driven by Selenium through chromium-driver; screenshots
kept under the folder the tests print); the server stopped by each module, no process
left."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import _browser as browser
from tests.conftest import kept_for_later_tests, normandy_command

pytest.importorskip("starlette", reason="pip install 'normandy[ui]' (the test extra has it)")

SECRET = "tok-S3CRET-ui-77"

PROCS = """
import os
import time

from normandy_core import hookimpl


def make(params, pipe):
    print(f"making {params['rows']} rows with {pipe.credentials['token']}")
    return [{"id": i, "name": f"row {i}"} for i in range(params["rows"])]


def count(rows):
    return len(rows)


def slow(log):
    for i in range(int(os.environ.get("SLOW", "1"))):
        log.info("still working: %d", i)
        time.sleep(1)


@hookimpl
def normandy_processes():
    return {"make": make, "count": count, "slow": slow}
"""

CONF = f"""
confs:
  plugins: [procs]
  workers: 2
  cache: true
  envs:
    dev:
      credentials: conf/creds.yml
flows:
  shop:
    tags: [default]
    steps:
      make:
        make: {{outputs: rows, params: {{rows: 2, key: {SECRET}}}}}
      count:
        count: {{outputs: n}}
  long:
    tags: [slow]
    steps:
      wait: [slow]
"""


def _normandy(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [*normandy_command(), *args],
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A project with two runs: the second after its config changed (rows 2 -> 3)."""
    root = tmp_path_factory.mktemp("ui") / "shop"
    (root / "pipeline").mkdir(parents=True)
    (root / "pipeline" / "pipeline_conf.yml").write_text(CONF)
    (root / "conf").mkdir()
    (root / "conf" / "creds.yml").write_text(f"token: {SECRET}\n")
    (root / "procs.py").write_text(PROCS)
    ids = []
    with kept_for_later_tests():
        for rows in (2, 3):
            conf = root / "pipeline" / "pipeline_conf.yml"
            conf.write_text(CONF.replace("rows: 2", f"rows: {rows}"))
            ids.append(re.findall(r"run (\S+) succeeded", _normandy("run", cwd=root))[-1])
    return root, ids


@contextlib.contextmanager
def _serving(root: Path) -> Iterator[str]:
    """``normandy ui --port 0`` on the project at ``root``: its URL. Stopped with Ctrl-C
    (SIGINT) at the end; it must end by itself, with status 0."""
    with kept_for_later_tests():
        process = subprocess.Popen(
            [*normandy_command(), "ui", "--port", "0"],
            cwd=root,
            env={**os.environ, "NO_COLOR": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert found, line + (process.stderr.read() if process.poll() is not None else "")
        assert "read-only; Ctrl-C stops it" in line
        yield found[1]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    assert process.returncode == 0, err
    assert err.strip().endswith("normandy ui: stopped") and "Traceback" not in err


@pytest.fixture(scope="module")
def server(project: tuple[Path, list[str]]) -> Iterator[str]:
    """The ui of the module's project, for the module's tests."""
    root, _ = project
    with _serving(root) as url:
        yield url


@pytest.fixture
def chrome() -> Iterator[object]:
    """A browser for one test (chromium's crash handlers leave its process tree: they
    must be gone when the test ends)."""
    if not browser.available():
        pytest.skip(browser.MISSING)
    with browser.chromium(1280, 1000) as driver:
        yield driver


def _wait(driver, script: str, timeout: float = 20) -> object:
    """The value of ``script`` once it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_the_first_page_weighs_little_and_fetches_nothing_else(server):
    with urllib.request.urlopen(server, timeout=30) as response:
        body = response.read()
        policy = response.headers["Content-Security-Policy"]
    assert len(body) <= 200 * 1024, len(body)
    assert "default-src 'none'" in policy  # nothing may be loaded from anywhere else
    body = body.replace(b'xmlns="http://www.w3.org/2000/svg"', b"")
    body = body.replace(b'<link rel="icon" href="data:,">', b"")  # no favicon to fetch
    for outside in (b"<link", b" src=", b"@import", b"url(http", b"https://"):
        assert outside not in body


def test_the_pages_in_a_browser(server, chrome, project):
    root, (first, second) = project
    driver = chrome
    driver.get(server)
    assert _wait(driver, "return document.documentElement.getAttribute('data-ui-ready')")
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    rows = driver.find_elements("css selector", "table.runs tbody tr[data-run]")
    assert [r.get_attribute("data-run") for r in rows] == [second, first]
    browser.screenshot(driver, "ui-runs")

    # compare the two runs: tick both, submit
    for box in driver.find_elements("css selector", 'input[name="run"]'):
        box.click()
    driver.find_element("css selector", "#compare button[type=submit]").click()
    assert _wait(
        driver, "return location.pathname === '/diff' && document.readyState === 'complete'"
    )
    text = driver.find_element("css selector", "#diff").text
    assert "params changed (rows: 2 → 3)" in text and "input changed (rows)" in text
    browser.screenshot(driver, "ui-diff")

    # a run: open a task, its details load, its log is read
    driver.get(f"{server}runs/{second}")
    row = driver.find_element("css selector", '.task-row[data-key="shop.make.make"]')
    row.find_element("css selector", "summary").click()
    facts = "return document.querySelector('.task-row[data-key=\"shop.make.make\"] .facts')"
    assert _wait(driver, facts)
    assert _wait(
        driver,
        "var pre = document.querySelector('.task-row[data-key=\"shop.make.make\"] pre.log');"
        "return pre && pre.textContent.indexOf('making 3 rows with ***') >= 0",
    ), row.text
    details = row.text
    assert "ran: params changed (rows: 2 → 3)" in details
    assert '"key": "***"' in details
    driver.execute_script("arguments[0].scrollIntoView()", row)
    browser.screenshot(driver, "ui-run")
    assert SECRET not in driver.page_source

    # a variable, previewed from the task's outputs
    row.find_element("link text", "rows").click()
    assert _wait(driver, "return location.pathname.endsWith('/vars/shop/rows')")
    assert "{'id': 0, 'name': 'row 0'}" in driver.find_element("css selector", "#preview").text
    browser.screenshot(driver, "ui-preview")

    driver.get(f"{server}flows")
    names = driver.execute_script(
        "return Array.from(document.querySelectorAll('.graph .task-node'),"
        " n => n.getAttribute('data-task'))"
    )
    assert names == ["shop.make.make", "shop.count.count", "long.wait.slow"]
    browser.screenshot(driver, "ui-flows")
    assert SECRET not in driver.page_source


def test_a_run_followed_in_a_browser(server, chrome, project):
    root, _ = project
    driver = chrome
    process = subprocess.Popen(
        [*normandy_command(), "run", "--tags", "slow", "--no-progress"],
        cwd=root,
        env={**os.environ, "SLOW": "4"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        driver.get(server + "?status=running")
        run_id = _wait(
            driver,
            "location.reload(); var r = document.querySelector('tr[data-run]');"
            "return r && r.getAttribute('data-run')",
            timeout=60,
        )
        assert run_id
        driver.get(f"{server}runs/{run_id}")
        assert driver.find_element("css selector", ".run-head .badge").text == "running"
        driver.find_element("css selector", '.task-row[data-key="long.wait.slow"] summary').click()
        assert _wait(
            driver,
            "var pre = document.querySelector('.task-row pre.log');"
            "return pre && pre.textContent.indexOf('still working: 1') >= 0",
        ), "the log was not followed"
        browser.screenshot(driver, "ui-live-run")
        assert _wait(  # at its end the page shows the run as it ended
            driver,
            "var b = document.querySelector('.run-head .badge');"
            "return b && b.textContent === 'succeeded'",
            timeout=60,
        )
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_port_in_use_is_a_clear_error(server, project):
    root, _ = project
    port = server.rsplit(":", 1)[1].strip("/")
    done = subprocess.run(
        [*normandy_command(), "ui", "--port", port],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    taken = f"cannot listen on 127.0.0.1:{port}: the port is already used by another program"
    assert taken in done.stderr
    assert "Traceback" not in done.stderr


def test_a_run_of_many_tasks_draws_its_timeline_after_its_page(chrome, tmp_path):
    """A run of more tasks than its page lists: the page comes first (its rows), then
    its timeline and flows, each drawn by a request of its own, in the browser."""
    from tests.core.test_web import many_tasks_history

    root = tmp_path / "big"
    many_tasks_history(root, 260)
    driver = chrome
    with _serving(root) as url:
        driver.get(f"{url}runs/big")
        assert _wait(driver, "return document.documentElement.getAttribute('data-parts')")
        bars = driver.execute_script("return document.querySelectorAll('.timeline .bar').length")
        assert bars == 260
        assert driver.execute_script("return !!document.querySelector('#flows-box svg.graph')")
        rows = driver.find_elements("css selector", ".task-row")
        assert len(rows) == 200 and rows[0].get_attribute("data-key") == "f.s.t259"
        driver.find_element("css selector", '.timeline .bar[data-target]').click()  # opens it
        assert _wait(driver, "return !!document.querySelector('.task-row[open]')")
        browser.screenshot(driver, "ui-run-of-many-tasks")
