"""A real browser for the tests of pages: Debian's chromium driven by Selenium through
Debian's chromium-driver (``.ci/run`` installs both), headless, with a fresh profile, and
never anything fetched from outside. Screenshots go to :data:`ARTEFACTS` (kept after the
session, never committed), which the tests print."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
DRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
ARTEFACTS = Path(
    os.environ.get("NORMANDY_TEST_ARTEFACTS")
    or Path(tempfile.gettempdir()) / "normandy-test-artefacts"
)
MISSING = (
    "chromium and chromium-driver are not installed (CI installs them: apt-get install "
    "chromium chromium-driver), or selenium is not (pip install -e '.[test]')"
)


def available() -> bool:
    if CHROMIUM is None or DRIVER is None:
        return False
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 1000) -> Iterator[Any]:
    """A Selenium driver of a headless chromium, quit on exit with every process it
    started: its driver, and the crash handlers chromium double-forks away from itself
    (found by a mark in their environment)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM and DRIVER
    mark = f"{_MARK}={secrets.token_hex(8)}"
    with tempfile.TemporaryDirectory(prefix="normandy-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        env = {**os.environ, _MARK: mark.partition("=")[2]}
        driver = webdriver.Chrome(service=Service(DRIVER, env=env), options=options)
        try:
            yield driver
        finally:
            try:
                driver.quit()
            finally:
                _stop_marked(mark.encode())


_MARK = "NORMANDY_TEST_BROWSER"


def _stop_marked(mark: bytes, grace: float = 2.0) -> None:
    """Wait ``grace`` seconds for the processes whose environment holds ``mark`` to end,
    then kill those left."""
    deadline = time.monotonic() + grace
    while True:
        left = [pid for pid in _pids() if mark in _environ(pid)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()] if os.path.isdir("/proc") else []


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []


def screenshot(driver: Any, name: str) -> Path:
    """Save what the browser shows as ``ARTEFACTS/name.png`` and say where."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    print(f"screenshot: {path}")
    return path
