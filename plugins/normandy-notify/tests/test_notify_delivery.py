"""Delivering notifications, in the test process, to real local targets: an HTTP server,
an SMTP server, a real command. The run and its summary are Normandy's own records
(``RunInfo``, ``Summary``, ``Outcome``), made here as a run would make them."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from conftest import SMTP_PASSWORD, SMTP_USER, Mailbox, Webhook
from normandy_notify._notifier import Notifier
from normandy_notify._settings import read_settings

from normandy_core.masking import Masker
from normandy_core.outcomes import Outcome, RunInfo, Summary, TaskError
from normandy_core.plan import Plan, Selection, Task

SECRET = "hunter2-db-password"


class Log(list[tuple[int, str]]):
    def __call__(self, level: int, message: str) -> None:
        self.append((level, message))

    def text(self) -> str:
        return "\n".join(message for _, message in self)


def _run(tmp_path: Path, log: Log, credentials: dict[str, Any] | None = None) -> RunInfo:
    creds = {"db": {"password": SECRET}, **(credentials or {})}
    values = [SECRET, *(v for c in (credentials or {}).values() for v in c.values())]
    return RunInfo(
        id="20261207-020000.123-a3f2",
        plan=Plan((), Selection()),
        env="prod",
        root=tmp_path,
        executor="local",
        workers=2,
        started=time.time() - 5,
        project="acme",
        credentials=creds,
        mask=Masker(values),
        log=log,
    )


def _summary(run: RunInfo, status: str = "failed") -> Summary:
    ok = Task("nightly", "extract", "get", "get", {})
    bad = Task("nightly", "load", "put", "put", {})
    error = TaskError("failed", "OperationalError", f"cannot log in with {SECRET!r}")
    outcomes = [Outcome(ok, "succeeded", attempts=1)]
    if status == "failed":
        outcomes.append(Outcome(bad, "failed", attempts=3, error=error))
    return Summary(run, outcomes, status, run.root / "logs" / run.id)


def _notifier(run: RunInfo, notify: list[dict[str, Any]]) -> Notifier:
    notifier = Notifier(run, read_settings(notify, "etl-1"))
    notifier.start()
    return notifier


def test_a_failure_told_by_webhook_masked(tmp_path: Path, webhook: Webhook):
    log = Log()
    run = _run(tmp_path, log)
    notifier = _notifier(run, [{"on": ["failure"], "webhook": webhook.url}])
    notifier.end(_summary(run))
    (got,) = webhook.received
    assert got.path == "/hooks/T0K3N-in-the-path"
    assert got.headers["Content-Type"] == "application/json"
    body = got.body
    assert body["event"] == "failure" and body["status"] == "failed"
    assert body["project"] == "acme" and body["run_id"] == run.id and body["env"] == "prod"
    assert body["counts"] == {"succeeded": 1, "failed": 1}
    (task,) = body["failed_tasks"]
    assert task["key"] == "nightly.load.put" and task["attempts"] == 3
    assert task["error"] == {
        "kind": "failed",
        "type": "OperationalError",
        "message": "cannot log in with '***'",
    }
    assert SECRET not in json.dumps(body)
    assert body["text"] == f"normandy: run {run.id} of acme failed (1 task failed)"
    # logged, naming the target without the token in its path
    assert log == [
        (
            logging.INFO,
            f"notification 1 (webhook http://127.0.0.1:{webhook.url.split(':')[2][:5]}/…, "
            "failure) sent",
        )
    ]


def test_only_the_events_asked_for(tmp_path: Path, webhook: Webhook):
    run = _run(tmp_path, Log())
    notifier = _notifier(
        run,
        [
            {"on": "failure", "webhook": webhook.url + "/failure"},
            {"on": ["success", "interrupted"], "webhook": webhook.url + "/other"},
        ],
    )
    notifier.end(_summary(run, "succeeded"))
    assert [r.path.rpartition("/")[2] for r in webhook.received] == ["other"]
    assert webhook.received[0].body["event"] == "success"
    assert webhook.received[0].body["failed_tasks"] == []

    run = _run(tmp_path, Log())
    _notifier(run, [{"on": ["interrupted"], "webhook": webhook.url}]).end(
        _summary(run, "interrupted")
    )
    assert webhook.received[-1].body["event"] == "interrupted"
    assert "was interrupted" in webhook.received[-1].body["text"]


def test_retried_with_a_bound(tmp_path: Path, webhook: Webhook):
    # two server errors, then it gets through: three attempts
    webhook.answers = [503, 500]
    log = Log()
    run = _run(tmp_path, log)
    _notifier(run, [{"on": "failure", "webhook": webhook.url, "retries": 2}]).end(_summary(run))
    assert webhook.attempts == 3 and len(webhook.received) == 1
    assert log[-1][0] == logging.INFO and log[-1][1].endswith("sent")

    # always failing: retries + 1 attempts, then a warning in the run's log
    webhook.answers, webhook.attempts = [503] * 10, 0
    log = Log()
    run = _run(tmp_path, log)
    _notifier(run, [{"on": "failure", "webhook": webhook.url, "retries": 1}]).end(_summary(run))
    assert webhook.attempts == 2
    ((level, message),) = log
    assert level == logging.WARNING
    assert "not delivered after 2 attempt(s): the server answered 503" in message

    # a client error does not get better: not retried
    webhook.answers, webhook.attempts = [404], 0
    log = Log()
    run = _run(tmp_path, log)
    _notifier(run, [{"on": "failure", "webhook": webhook.url, "retries": 3}]).end(_summary(run))
    assert webhook.attempts == 1
    assert "not delivered after 1 attempt(s): the server answered 404" in log.text()


def test_a_target_that_never_answers_costs_its_timeout_at_most(
    tmp_path: Path, silent_port: int, closed_port: int
):
    log = Log()
    run = _run(tmp_path, log)
    notifier = _notifier(
        run,
        [
            {"on": "failure", "webhook": f"http://127.0.0.1:{silent_port}/x", "timeout": 1},
            {"on": "failure", "webhook": f"http://127.0.0.1:{closed_port}/x", "timeout": 1.5},
        ],
    )
    started = time.monotonic()
    notifier.end(_summary(run))
    took = time.monotonic() - started
    assert 0.9 <= took < 1.5 + 0.5, took  # both at once: the longest timeout bounds the end
    text = log.text()
    ports = (silent_port, closed_port)
    silent, closed = (f"(webhook http://127.0.0.1:{p}/…, failure)" for p in ports)
    assert f"notification 1 {silent} not delivered" in text and "timed out" in text
    assert f"notification 2 {closed} not delivered after" in text
    assert "Connection refused" in text


def test_email_through_smtp_with_the_envs_credentials(tmp_path: Path, smtp: Mailbox):
    log = Log()
    run = _run(tmp_path, log, {"mail": {"user": SMTP_USER, "password": SMTP_PASSWORD}})
    notifier = _notifier(
        run,
        [
            {
                "on": "failure",
                "email": {
                    "to": ["team@example.com", "oncall@example.com"],
                    "from": "etl@example.com",
                    "smtp": f"{smtp.host}:{smtp.port}",
                    "credentials": "mail",
                },
            }
        ],
    )
    notifier.end(_summary(run))
    assert smtp.logins == [(SMTP_USER, SMTP_PASSWORD)], log
    (mail,) = smtp.messages
    # (a long subject is folded: the parser keeps the space it was folded at)
    assert mail["Subject"].strip() == f"[normandy] run {run.id} of acme failed (1 task failed)"
    assert mail["From"] == "etl@example.com"
    assert mail["To"] == "team@example.com, oncall@example.com"
    body = mail.get_content()
    assert "nightly.load.put: failed after 3 attempt(s)" in body
    assert "failed: OperationalError: cannot log in with '***'" in body
    assert SECRET not in body and SMTP_PASSWORD not in body
    assert json.loads(body.split("As JSON:", 1)[1])["run_id"] == run.id, body
    assert log.text().endswith(f"through {smtp.host}, failure) sent")


def test_an_email_whose_login_is_refused_is_not_retried(tmp_path: Path, smtp: Mailbox):
    log = Log()
    run = _run(tmp_path, log, {"mail": {"user": SMTP_USER, "password": "wrong-password"}})
    email = {"to": "a@example.com", "smtp": f"{smtp.host}:{smtp.port}", "credentials": "mail"}
    _notifier(run, [{"on": "failure", "email": email, "retries": 3}]).end(_summary(run))
    assert set(smtp.logins) == {(SMTP_USER, "wrong-password")} and not smtp.messages
    assert "refused the login of credentials 'mail'" in log.text()
    assert "wrong-password" not in log.text()


def test_a_command_gets_the_json_on_its_stdin(tmp_path: Path):
    log = Log()
    run = _run(tmp_path, log)
    out = tmp_path / "told.json"
    script = f"import sys, pathlib; pathlib.Path({str(out)!r}).write_text(sys.stdin.read())"
    _notifier(run, [{"on": "failure", "command": [sys.executable, "-c", script]}]).end(
        _summary(run)
    )
    told = json.loads(out.read_text())
    assert told["event"] == "failure" and told["failed_tasks"][0]["key"] == "nightly.load.put"
    assert SECRET not in out.read_text()
    assert log == [(logging.INFO, f"notification 1 (command {sys.executable}, failure) sent")]


def test_a_command_that_fails_or_hangs(tmp_path: Path):
    log = Log()
    run = _run(tmp_path, log)
    pid_file = tmp_path / "pid"
    hang = (
        f"import os, pathlib, subprocess, time; pathlib.Path({str(pid_file)!r})"
        ".write_text(str(subprocess.Popen(['sleep', '60']).pid)); time.sleep(60)"
    )
    fail = f"import sys; print('cannot reach {SECRET}', file=sys.stderr); sys.exit(3)"
    notifier = _notifier(
        run,
        [
            {"on": "failure", "command": [sys.executable, "-c", hang], "timeout": 1.5},
            {"on": "failure", "command": [sys.executable, "-c", fail], "retries": 1},
            {"on": "failure", "command": ["no-such-program-here"]},
        ],
    )
    started = time.monotonic()
    notifier.end(_summary(run))
    assert time.monotonic() - started < 1.5 + 1.0
    text = log.text()
    assert "notification 1" in text and "did not end in time; it was killed" in text
    assert "notification 2" in text and "not delivered after 2 attempt(s)" in text
    assert "exited with status 3: cannot reach ***" in text and SECRET not in text
    assert "cannot start no-such-program-here" in text
    # the command and what it started are gone (the suite checks for leftovers too)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    stat = Path(f"/proc/{child}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_long_run_is_told_while_it_goes_on(tmp_path: Path, webhook: Webhook):
    log = Log()
    run = _run(tmp_path, log)
    notifier = _notifier(run, [{"on": ["long"], "after": 1, "webhook": webhook.url}])
    failed = Outcome(
        Task("nightly", "s", "t", "t", {}), "failed", tolerated=True, attempts=1,
        error=TaskError("failed", "ValueError", "3 rows have no id"),
    )  # fmt: skip
    notifier.task_ended(failed)
    deadline = time.monotonic() + 10
    while not webhook.received and time.monotonic() < deadline:
        time.sleep(0.05)
    (got,) = webhook.received
    assert got.body["event"] == "long" and got.body["status"] == "running"
    assert got.body["ended"] is None and got.body["duration"] >= 5  # since the run started
    assert got.body["failed_tasks"][0]["tolerated"] is True
    assert "is still running after" in got.body["text"]
    notifier.end(_summary(run, "succeeded"))  # no on: success, nothing more
    assert len(webhook.received) == 1


def test_a_run_shorter_than_after_is_not_told_long(tmp_path: Path, webhook: Webhook):
    run = _run(tmp_path, Log())
    notifier = _notifier(run, [{"on": ["long"], "after": 1, "webhook": webhook.url}])
    notifier.end(_summary(run, "succeeded"))
    time.sleep(1.3)
    assert webhook.received == []


def test_nothing_raises_out_of_a_notifier(tmp_path: Path, smtp: Mailbox):
    """A bug in a delivery is logged, never raised into the run."""
    log = Log()
    # the email's login looks there
    run = dataclasses.replace(_run(tmp_path, log), credentials=None)  # type: ignore[arg-type]
    email = {"to": "a@example.com", "smtp": f"{smtp.host}:{smtp.port}", "credentials": "mail"}
    notifier = _notifier(run, [{"on": "failure", "email": email}])
    notifier.end(_summary(run))
    assert log and log[0][0] == logging.ERROR and "failed: AttributeError" in log[0][1]
