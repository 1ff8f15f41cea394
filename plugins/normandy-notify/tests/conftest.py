"""Fixtures for normandy-notify: real local targets (an HTTP server and an SMTP server in
threads of the test process, listening on 127.0.0.1 only), real runs' records for the
unit tests, and the real ``normandy`` command with the plugin pip-installed for the
end-to-end ones."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from normandy_core.testing._project import normandy_command  # the plugin's, shared

PLUGIN = Path(__file__).resolve().parents[1]
# the unit tests import the source tree, installed or not (the end-to-end ones install it)
sys.path.insert(0, str(PLUGIN))


# -- a webhook's server --------------------------------------------------------------------


@dataclass
class Received:
    when: float
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Webhook:
    """An HTTP server on 127.0.0.1: answers each POST with the next of ``answers`` (then
    204), after ``delay`` seconds; keeps what it received."""

    url: str
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    delay: float = 0.0
    attempts: int = 0


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook: Webhook

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hook.attempts += 1
            if hook.delay:
                time.sleep(hook.delay)
            status = hook.answers.pop(0) if hook.answers else 204
            if status < 300:
                hook.received.append(
                    Received(time.time(), self.path, dict(self.headers), json.loads(body))
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    hook = Webhook(f"http://127.0.0.1:{server.server_address[1]}/hooks/T0K3N-in-the-path")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# -- an SMTP server --------------------------------------------------------------------------

SMTP_USER, SMTP_PASSWORD = "robot", "s3cr3t-smtp-pass"


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[Any] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    """aiosmtpd on 127.0.0.1, requiring a login (``robot`` / ``s3cr3t-smtp-pass``) before
    it takes a message; keeps each message it took, parsed."""
    pytest.importorskip("aiosmtpd", reason="pip install aiosmtpd (the test extra has it)")
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    box = Mailbox("127.0.0.1", port)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            box.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        if isinstance(data, LoginPassword):
            login = (data.login.decode(), data.password.decode())
            box.logins.append(login)
            # handled=False: aiosmtpd answers 535 itself (else it says nothing at all)
            return AuthResult(success=login == (SMTP_USER, SMTP_PASSWORD), handled=False)
        return AuthResult(success=False, handled=False)

    warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


# -- the real command, with the plugin installed ---------------------------------------------


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """normandy-notify pip-installed (its entry point and all) into its own folder, from a
    copy of its source so that the build leaves no ``build/`` nor ``*.egg-info`` in the
    tree."""
    root = tmp_path_factory.mktemp("normandy-notify")
    source = root / "normandy-notify"
    shutil.copytree(
        PLUGIN,
        source,
        ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"),
    )
    target = root / "site"
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--target", str(target), str(source),
        ],
        check=True,
    )  # fmt: skip
    return target


@pytest.fixture
def normandy(site: Path) -> Callable[..., Result]:
    """``normandy(*args, cwd=...)`` runs the real command with the plugin installed."""

    def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Result:
        full_env = {
            **os.environ,
            "NO_COLOR": "1",
            "COLUMNS": "200",
            "PYTHONPATH": str(site),
            **(env or {}),
        }
        started = time.monotonic()
        proc = subprocess.run(
            [*normandy_command(), *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

    return run


@pytest.fixture
def write_project(tmp_path: Path) -> Callable[..., Path]:
    """``write_project(conf_yaml, files={relpath: text})`` writes a project, returns its root."""

    def write(conf: str, files: dict[str, str] | None = None) -> Path:
        root = tmp_path / "project"
        (root / "pipeline").mkdir(parents=True, exist_ok=True)
        (root / "pipeline" / "pipeline_conf.yml").write_text(textwrap.dedent(conf).lstrip())
        for rel, text in (files or {}).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip())
        return root

    return write
