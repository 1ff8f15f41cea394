"""What a process's subprocesses write, and what it writes to its file descriptors 1 and 2
itself (SPEC 4, 11): in its log, masked, tagged with the task, complete before the task's
end is told — and never on Normandy's own stdout, which ``--json`` keeps for the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXECUTORS = ["local", "serial", "dask"]

PROCS = """
import ctypes
import os
import subprocess
import time

from normandy_core import hookimpl


def noisy(pipe, log):
    token = pipe.credentials["token"]
    print("printed first")
    subprocess.run(["echo", f"echo says {token}"], check=True)
    subprocess.run(["sh", "-c", f"echo 'sh says {token} on stderr' >&2"], check=True)
    os.write(1, b"raw on one\\n")
    ctypes.CDLL(None).printf(b"printf says %s\\n", token.encode())  # buffered by the C library
    os.write(2, b"raw on two, without a newline")


def quiet(pipe):
    time.sleep(0.2)
    print("quiet is done")


@hookimpl
def normandy_processes():
    return {"noisy": "procs:noisy", "quiet": "procs:quiet"}
"""

CONF = """
confs:
  plugins: [procs]
  envs:
    dev: {credentials: conf/dev_credentials.yml}
flows:
  f:
    tags: [default]
    steps:
      s: [noisy, quiet]
"""

TOKEN = "tok-987654321"


@pytest.mark.parametrize("executor", EXECUTORS)
def test_subprocess_output_goes_to_the_task_s_log_masked(
    make_project, normandy, executor_args, executor
):
    """It went to the command's own stdout and stderr, unmasked, in no log file, and
    ``run --json`` printed it before the JSON."""
    root = make_project(
        CONF, {"procs.py": PROCS, "conf/dev_credentials.yml": f"token: {TOKEN}\n"}
    )
    result = normandy("run", *executor_args(executor), "--json", cwd=root)
    assert result.returncode == 0, result.output
    data = json.loads(result.stdout)  # the JSON alone
    assert data["status"] == "succeeded"
    assert TOKEN not in result.stdout and TOKEN not in result.stderr
    log_dir = Path(data["logs"])
    for path in log_dir.iterdir():
        assert TOKEN not in path.read_text(), path
    log = (log_dir / "process-f.s.noisy.log").read_text()
    expected = [
        "INFO    f.s.noisy | printed first",
        "INFO    f.s.noisy | echo says ***",
        "WARNING f.s.noisy | sh says *** on stderr",
        "INFO    f.s.noisy | raw on one",
        "INFO    f.s.noisy | printf says ***",
        "WARNING f.s.noisy | raw on two, without a newline",
    ]
    for line in expected:
        assert line in log, log
        assert line in result.stderr  # on the console, as the task's
        assert line in (log_dir / "run.log").read_text()
    # complete before the task's end was recorded
    assert log.index("raw on two, without a newline") < log.index("succeeded in")
    # the other task's log has its own lines only
    other = (log_dir / "process-f.s.quiet.log").read_text()
    assert "quiet is done" in other
    assert "says" not in other and "raw on" not in other
