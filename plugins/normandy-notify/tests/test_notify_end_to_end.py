"""Notifications end to end: the real ``normandy run`` with normandy-notify pip-installed,
telling real local targets (an HTTP server, an SMTP server, a command) of real runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from conftest import SMTP_PASSWORD, SMTP_USER, Mailbox, Webhook, normandy_command

PROCS = """
import time
from pathlib import Path

from normandy_core import hookimpl


def extract(pipe):
    pass


def load(pipe):
    raise ConnectionError(f"the warehouse refused {pipe.credentials['warehouse']}")


def slow(pipe):
    Path(pipe.path, "started").write_text("1")
    time.sleep(float(pipe.params.get("seconds", 2.5)))


@hookimpl
def normandy_processes():
    return {"extract": extract, "load": load, "slow": slow}
"""

WAREHOUSE = "pg-p4ssw0rd-9f3a"


def _conf(notify: str, steps: str = "s1: [extract]\n      s2: [load]") -> str:
    return f"""
confs:
  plugins: [procs]
  workers: 2
  notify:
{notify}
  envs:
    dev:
      credentials: conf/dev_credentials.yml
flows:
  f:
    tags: [default]
    steps:
      {steps}
"""


CREDENTIALS = f"""
warehouse: {WAREHOUSE}
mail: {{user: {SMTP_USER}, password: {SMTP_PASSWORD}}}
"""


def _run_log(root: Path) -> str:
    (log,) = (root / "logs").glob("*/run.log")
    return log.read_text()


def test_a_failed_run_told_three_ways(
    normandy, write_project, webhook: Webhook, smtp: Mailbox, tmp_path: Path
):
    told = tmp_path / "told.json"
    notify = f"""
    - on: [failure]
      webhook: {webhook.url}
    - on: failure
      email: {{to: team@example.com, smtp: "{smtp.host}:{smtp.port}", credentials: mail}}
    - on: [failure, success]
      command: [sh, -c, "cat > {told}"]
    - on: success
      webhook: {webhook.url}/never"""
    root = write_project(
        _conf(notify), {"procs.py": PROCS, "conf/dev_credentials.yml": CREDENTIALS}
    )
    result = normandy("run", "--no-progress", cwd=root)
    assert result.returncode == 1, result.output  # notified, and still the run's status
    run_id = re.search(r"run (\S+) failed", result.stderr)[1]

    (hook,) = webhook.received  # not the one `on: success`
    assert hook.body["run_id"] == run_id and hook.body["event"] == "failure"
    assert hook.body["project"] == "project"
    (task,) = hook.body["failed_tasks"]
    assert task["key"] == "f.s2.load"
    assert task["error"]["message"] == "the warehouse refused ***"
    (mail,) = smtp.messages
    assert "f.s2.load: failed after 1 attempt(s)" in mail.get_content()
    assert json.loads(told.read_text())["failed_tasks"] == hook.body["failed_tasks"]
    for text in (json.dumps(hook.body), mail.as_string(), told.read_text(), result.output):
        assert WAREHOUSE not in text and SMTP_PASSWORD not in text
    log = _run_log(root)
    assert f"notification 1 (webhook http://127.0.0.1:{webhook.url.split(':')[2][:5]}/…" in log
    for n in (1, 2, 3):
        assert re.search(rf"notification {n} \(.*, failure\) sent", log), log
    assert "T0K3N" not in log  # the webhook's path is never shown


def test_a_long_run_is_told_while_it_goes_on(normandy, write_project, webhook: Webhook):
    notify = f"""
    - on: [long, success]
      after: 1
      webhook: {webhook.url}"""
    root = write_project(
        _conf(notify, "s1: [slow]"), {"procs.py": PROCS, "conf/dev_credentials.yml": CREDENTIALS}
    )
    result = normandy("run", "--no-progress", cwd=root)
    assert result.returncode == 0, result.output
    long, end = webhook.received
    assert long.body["event"] == "long" and long.body["status"] == "running"
    assert end.body["event"] == "success"
    # told while it went on: before the task's 2.5 s were over
    history = json.loads(normandy("runs", "last", "--json", cwd=root).stdout)
    (task,) = history["tasks"]
    assert long.when < task["ended"] - 0.5


def test_a_target_that_never_answers_neither_fails_nor_holds_the_run(
    normandy, write_project, silent_port: int, webhook: Webhook
):
    notify = f"""
    - on: success
      webhook: http://127.0.0.1:{silent_port}/hook
      timeout: 1.5
    - on: success
      webhook: {webhook.url}"""
    root = write_project(
        _conf(notify, "s1: [extract]"),
        {"procs.py": PROCS, "conf/dev_credentials.yml": CREDENTIALS},
    )
    result = normandy("run", "--no-progress", cwd=root)
    assert result.returncode == 0, result.output
    assert len(webhook.received) == 1  # the other one got through meanwhile
    log = _run_log(root)
    assert re.search(
        rf"WARNING .*notification 1 \(webhook http://127.0.0.1:{silent_port}/…, success\) "
        r"not delivered after \d attempt\(s\):.*timed out",
        log,
    ), log
    run = json.loads(normandy("runs", "last", "--json", cwd=root).stdout)
    assert run["status"] == "succeeded"


def test_an_interrupted_run_is_told(write_project, site: Path, webhook: Webhook):
    notify = f"""
    - on: interrupted
      webhook: {webhook.url}"""
    root = write_project(
        _conf(notify, "s1: {slow: {params: {seconds: 30}}}"),
        {"procs.py": PROCS, "conf/dev_credentials.yml": CREDENTIALS},
    )
    process = subprocess.Popen(
        [*normandy_command(), "run", "--no-progress"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(site)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (root / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    (hook,) = webhook.received
    assert hook.body["event"] == "interrupted" and hook.body["status"] == "interrupted"
