"""Notifications (SPEC 18): what ``confs.notify`` adds to the end of a run.

A one-task run of the real ``normandy run``, with normandy-notify pip-installed (into a
folder of its own, on ``PYTHONPATH``) in every variant: without notifications (the
baseline); told by a webhook that answers (an HTTP server on 127.0.0.1, in this process);
told by a webhook that never answers (a socket that accepts and stays silent), ``timeout:
1``. What the notifications add to the run's end is the time the ``normandy_after_run``
hooks take, measured inside each run by a project plugin whose ``@hookimpl(wrapper=True)``
wraps them (as the hooks' documentation shows): a whole process's time on a shared machine
varies by more than the 50 ms measured.
"""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import _projects
from _harness import HERE, Samples, clear_runs, normandy_command, run_process
from _report import row, target

from workloads._context import Context

NAME = "notify"
TITLE = "notifications"
USES_KEDRO = False
TIMEOUT = 1.0


class _Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _install(folder: Path) -> Path:
    """The plugin pip-installed into ``folder/site``, from a copy of its source (a build
    leaves ``build/`` and ``*.egg-info`` where it builds)."""
    site = folder / "site"
    if not site.exists():
        source = folder / "normandy-notify"
        shutil.copytree(
            HERE.parent / "plugins" / "normandy-notify",
            source,
            ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"),
        )
        subprocess.run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                "--no-build-isolation", "--target", str(site), str(source),
            ],
            check=True,
        )  # fmt: skip
    return site


TIMER = """
import time
from pathlib import Path

from normandy_core import hookimpl


@hookimpl(wrapper=True)
def normandy_after_run(run):
    started = time.perf_counter()
    yield  # every other plugin's normandy_after_run: normandy-notify's
    Path(run.root, "after_run.ms").write_text(str((time.perf_counter() - started) * 1000))
"""


def _project(root: Path, notify: list[dict[str, Any]] | None) -> Path:
    _projects.noops(root, 1, 1)
    conf_file = root / "pipeline" / "pipeline_conf.yml"
    conf = json.loads(conf_file.read_text())
    conf["confs"]["plugins"].append("bench_timer")
    if notify:
        conf["confs"]["notify"] = notify
    conf_file.write_text(json.dumps(conf, indent=1) + "\n")
    (root / "bench_timer.py").write_text(TIMER)
    return root


def run(ctx: Context) -> dict[str, Any]:
    folder = ctx.folder(NAME)
    site = _install(folder)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    answering = f"http://127.0.0.1:{server.server_address[1]}/hook"
    quiet = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
    projects = {
        "no notification": _project(folder / "none", None),
        "webhook answering": _project(
            folder / "answering", [{"on": "success", "webhook": answering}]
        ),
        "webhook silent": _project(
            folder / "silent",
            [{"on": "success", "webhook": quiet, "timeout": TIMEOUT, "retries": 0}],
        ),
    }
    env = {"PYTHONPATH": str(site)}
    samples = Samples()

    def once(name: str) -> None:
        root = projects[name]
        run_process([*normandy_command(), "run", "--project", root], env=env)
        samples.add(name, float((root / "after_run.ms").read_text()))
        clear_runs(root)

    repeats = max(3, 2 * ctx.repeats)
    try:
        ctx.log("  warm-up")
        for name in projects:
            once(name)
        samples.series.clear()
        ctx.alternate({name: (lambda n=name: once(n)) for name in projects}, repeats)
    finally:
        server.shutdown()
        server.server_close()
        silent.close()
    m = samples.summary()
    baseline = ("no notification", m["no notification"])
    rows = [
        row(
            TITLE,
            "a run's end (after_run hooks): a webhook that answers",
            "ms",
            m["webhook answering"],
            baseline,
            target("≤ 50 ms", "value", "<=", 50.0),
        ),
        row(
            TITLE,
            f"a run's end (after_run hooks): a webhook silent, timeout {TIMEOUT:g} s",
            "ms",
            m["webhook silent"],
            baseline,
            target(f"≤ its timeout, {TIMEOUT * 1000:.0f} ms", "value", "<=", TIMEOUT * 1000),
        ),
    ]
    return {"params": {"repeats": repeats, "timeout": TIMEOUT}, "metrics": m, "rows": rows}
