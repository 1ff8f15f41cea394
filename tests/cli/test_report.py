"""``normandy report [RUN_ID|last] [--output FILE]`` end to end: a real run of a project
with a succeeding, a failing and a retried task, its report written and opened in a real
headless browser (Debian's chromium, which CI installs; skipped where it is absent)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests import _browser as browser

PROCS = """
import time

from normandy_core import hookimpl


def ok(pipe, log):
    time.sleep(0.4)
    log.info("ok did its job")


def flaky(pipe):
    marker = pipe.path / f"flaky-{pipe.run_id}"
    if not marker.exists():
        marker.write_text("1")
        raise ConnectionError("the server did not answer")


def boom(pipe, log):
    time.sleep(0.2)
    log.warning("boom is about to fail")
    raise RuntimeError("boom: the process exploded")


@hookimpl
def normandy_processes():
    return {"ok": ok, "flaky": flaky, "boom": boom}
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
        boom:
      s2: [ok]
"""

TRACEBACK = "Traceback (most recent call last)"
CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)


@pytest.fixture
def failed_run(normandy, make_project) -> tuple[Path, str]:
    root = make_project(CONF, {"procs.py": PROCS})
    result = normandy("run", "--json", cwd=root)
    assert result.returncode == 1, result.output
    run_id = re.search(r'"run_id": "([^"]+)"', result.stdout)
    assert run_id
    return root, run_id[1]


def test_report_of_the_last_run(normandy, failed_run):
    root, run_id = failed_run
    result = normandy("report", cwd=root)
    assert result.returncode == 0, result.output
    assert result.stdout.strip() == f"logs/{run_id}/report.html"  # where it wrote it
    assert f"report of run {run_id} (failed, 4 tasks)" in result.stderr
    html = (root / "logs" / run_id / "report.html").read_text()
    assert html.startswith("<!doctype html>")
    assert f"normandy run {run_id}: failed" in html
    assert html.count('<g class="bar"') == 3  # s2 never started
    assert "RuntimeError: boom: the process exploded" in html
    assert "boom is about to fail" in html and "ok did its job" in html  # log tails


def test_report_of_a_run_by_id_to_a_file(normandy, failed_run, tmp_path: Path):
    root, run_id = failed_run
    again = normandy("run", cwd=root)  # a newer run: the id still picks the first
    assert again.returncode == 1
    out = tmp_path / "reports" / "first.html"
    result = normandy("report", run_id, "--output", str(out), "--project", str(root))
    assert result.returncode == 0, result.output
    assert Path(result.stdout.strip()) == out
    assert f"normandy run {run_id}: failed" in out.read_text()


def test_report_after_the_logs_were_deleted(normandy, failed_run):
    root, run_id = failed_run
    shutil.rmtree(root / "logs")
    result = normandy("report", run_id, cwd=root)
    assert result.returncode == 0, result.output
    html = (root / "logs" / run_id / "report.html").read_text()
    assert f"The log folder logs/{run_id}/ is gone" in html
    assert html.count('<g class="bar"') == 3


def test_unknown_runs_are_usage_errors(normandy, make_project, failed_run):
    root, run_id = failed_run
    result = normandy("report", "nosuchrun", cwd=root)
    assert result.returncode == 2
    assert "no run 'nosuchrun' is recorded" in result.stderr
    assert f"recent runs: {run_id}" in result.stderr
    assert TRACEBACK not in result.output and result.stdout == ""

    empty = make_project(CONF, {"procs.py": PROCS}, root=root.parent / "empty")
    result = normandy("report", cwd=empty)
    assert result.returncode == 2
    assert "no run is recorded" in result.stderr and TRACEBACK not in result.output

    result = normandy("report", "--output", str(root), cwd=root)
    assert result.returncode == 2 and "is a directory" in result.stderr
    inside_a_file = root / "pipeline" / "pipeline_conf.yml" / "report.html"
    result = normandy("report", "--output", str(inside_a_file), cwd=root)
    assert result.returncode == 2
    assert "cannot write the report to pipeline/pipeline_conf.yml/report.html" in result.stderr
    assert "choose another file with --output" in result.stderr
    assert TRACEBACK not in result.output


# -- in a real browser ----------------------------------------------------------------------


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM
    with tempfile.TemporaryDirectory(prefix="normandy-chromium-") as profile:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (CI installs it: apt-get install chromium)",
)
def test_the_report_in_a_browser(normandy, failed_run, tmp_path: Path):
    root, run_id = failed_run
    assert normandy("report", cwd=root).returncode == 0
    url = (root / "logs" / run_id / "report.html").as_uri()

    # the DOM after the page's script ran: one bar per task that ran, one rectangle per
    # attempt (flaky's retry too), nothing broken on the way
    dom = _chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr
    page = dom.stdout
    assert re.search(r'<html[^>]*\bdata-ready="1"', page), page[:300]
    assert re.search(r'<html[^>]*\bdata-bars="3"', page)
    bars = re.findall(r'<g class="bar" data-task="([^"]+)" data-status="([^"]+)"', page)
    assert sorted(bars) == [
        ("f.s1.boom", "failed"),
        ("f.s1.flaky", "succeeded"),
        ("f.s1.ok", "succeeded"),
    ]
    assert len(re.findall(r'<rect class="attempt ', page)) == 4
    assert len(re.findall(r'<rect class="attempt s-failed retried"', page)) == 1

    # a screenshot: a real picture of the page
    shot = tmp_path / "report.png"
    taken = _chromium(f"--screenshot={shot}", "--window-size=1280,1600", url)
    assert taken.returncode == 0, taken.stderr
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (1280, 1600)
    # far more than a blank page of that size compresses to (a few KB)
    assert len(data) > 60_000, len(data)


DATA_PROCS = """
import time


def make():
    time.sleep(1.0)  # a long step beside a step of milliseconds
    return list(range(1000))


def use(rows):
    return sum(rows)
"""

DATA_CONF = """
confs:
  processes: {make: "procs:make", use: "procs:use"}
  envs: {dev: {}}
flows:
  f:
    tags: [default]
    steps:
      slow_step: {make: {outputs: rows}}
      quick_step: {use: {outputs: total}}
"""


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (CI installs it: apt-get install chromium)",
)
def test_the_report_shows_the_data_and_short_steps(normandy, make_project, tmp_path: Path):
    root = make_project(DATA_CONF, {"procs.py": DATA_PROCS})
    assert normandy("run", cwd=root).returncode == 0
    out = tmp_path / "report.html"
    assert normandy("report", "--output", str(out), cwd=root).returncode == 0
    dom = _chromium("--dump-dom", out.as_uri())
    assert dom.returncode == 0, dom.stderr
    page = dom.stdout
    assert re.search(r'<html[^>]*\bdata-ready="1"', page), page[:300]
    # the timeline: both steps' bands named, the quick one wide enough to be read
    bands = dict(
        re.findall(
            r'data-step="f\.(\w+)"><title>[^<]*</title><rect x="[\d.]+" y="0" width="([\d.]+)"',
            page,
        )
    )
    assert set(bands) == {"slow_step", "quick_step"}
    assert float(bands["quick_step"]) >= 60
    assert '<text class="band-label"' in page and ">quick_step<" in page
    # the data: the variable drawn between its writer and its reader, sizes in the details
    assert page.count('class="var-node"') == 2
    assert re.search(
        r"<dt>in</dt><dd><code[^>]*>rows</code> <span class=\"muted\">\([\d.]+ KiB\)", page
    )
    assert re.search(
        r"<dt>out</dt><dd><code[^>]*>total</code> <span class=\"muted\">\(\d+ B, int\)", page
    )


WIDE = """
confs:
  plugins: [procs]
  workers: 2
  envs:
    dev: {}
flows:
  wide:
    tags: [default]
    steps:
""" + "".join(
    f"      step_{i:02d}_with_a_long_name:\n        step{i}: {{process: ok, outputs: v{i}}}\n"
    for i in range(12)
)

WIDE_PROCS = """
from normandy_core import hookimpl


def ok():
    return 1


@hookimpl
def normandy_processes():
    return {"ok": ok}
"""


@pytest.mark.skipif(not browser.available(), reason=browser.MISSING)
def test_a_wide_flow_diagram_fits_the_page(normandy, make_project):
    """Reported: a wide flow diagram is cut at 1280 px. Twelve steps with data between
    them: the flow goes on in rows below, as text wraps, and the picture is shown whole,
    at its actual size; in a narrower window it is scaled to fit, with a button to see it
    at its actual size."""
    root = make_project(WIDE, {"procs.py": WIDE_PROCS})
    assert normandy("run", cwd=root).returncode == 0
    result = normandy("report", cwd=root)
    assert result.returncode == 0, result.output
    url = (root / result.stdout.strip()).as_uri()
    measure = (
        "var svg = document.querySelector('#flows svg.graph');"
        "var box = svg.parentElement.getBoundingClientRect();"
        "var r = svg.getBoundingClientRect();"
        "var steps = Array.from(svg.querySelectorAll('.step-name'), e => e.firstChild.data);"
        "return [Number(svg.getAttribute('width')), r.width, r.left, r.right, box.left,"
        " box.right, document.documentElement.scrollWidth, window.innerWidth, steps,"
        " !document.querySelector('#flows [data-zoom]').hidden];"
    )
    with browser.chromium(1280, 1000) as driver:
        driver.get(url)
        drawn, shown, left, right, box_left, box_right, page, window, steps, zoom = (
            driver.execute_script(measure)
        )
        assert steps == [f"step_{i:02d}_with_a_long_name" for i in range(12)]
        assert shown == pytest.approx(drawn, abs=1)  # at its actual size...
        assert box_left <= left and right <= box_right + 0.5  # ...and whole
        assert page <= window and not zoom
        driver.execute_script("document.getElementById('flows').scrollIntoView()")
        browser.screenshot(driver, "report-wide-flows-1280")

        driver.set_window_size(800, 1000)
        driver.get(url)
        drawn, shown, left, right, box_left, box_right, page, window, steps, zoom = (
            driver.execute_script(measure)
        )
        assert shown < drawn and box_left <= left and right <= box_right + 0.5  # scaled
        assert page <= window and zoom
        driver.find_element("css selector", "#flows [data-zoom]").click()
        assert driver.execute_script(measure)[1] == pytest.approx(drawn, abs=1)
