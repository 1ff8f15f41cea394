"""10. Cached (issue 22): a step of 2,000 tasks, every one reused.

One step of 2,000 tasks of one process (an ``iter_param``), each writing a small variable,
``cache: true``, on 2 workers. In each repetition, on an emptied project: the first run
(whole command), then the same command again, where every task is reused: no worker
starts, no process module is imported, the earlier successes are read from the history in
a few queries and the cached tasks' records written in one transaction. Target: the
rerun ≤ 0.25× the first run. The rerun's own history says how many tasks ran (0).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import _projects
from _harness import Samples, normandy
from _report import row, target

from workloads._context import Context

NAME = "cached"
TITLE = "cached"
USES_KEDRO = False

PROCS = '''\
def write(pipe, params):
    pipe.vars[f"x_{params['n']}"] = params["n"]
'''


def _project(root: Path, tasks: int) -> Path:
    values = [str(i) for i in range(tasks)]
    flow = _projects._flow(
        [("s", {"write": {"iter_param": {"name": "n", "values": values}}})]
    )
    project = _projects._write(
        root, {"flows": {"bench": flow}}, {"write": "bench_cached:write"},
        {"bench_cached.py": PROCS},
    )
    conf = project / "pipeline" / "pipeline_conf.yml"
    data = json.loads(conf.read_text())
    data["confs"]["cache"] = True
    conf.write_text(json.dumps(data, indent=1) + "\n")
    return project


def run(ctx: Context) -> dict[str, Any]:
    tasks = ctx.size(2000, 300)
    project = _project(ctx.folder(NAME) / "project", tasks)
    samples = Samples()

    def first_then_cached() -> None:
        for folder in (".normandy", "logs"):
            shutil.rmtree(project / folder, ignore_errors=True)
        for key in ("first", "cached"):
            proc = normandy("run", "--project", project, "--json", "--no-progress")
            summary = json.loads(proc.stdout)
            if summary["status"] != "succeeded":
                raise RuntimeError(f"the {key} run ended {summary['status']}")
            samples.add(f"{key}.wall", proc.seconds)
            samples.add(f"{key}.ran", sum(t["status"] == "succeeded" for t in summary["tasks"]))

    ctx.log("  warm-up: once")
    first_then_cached()
    samples.series.clear()
    ctx.alternate({"first run, then every task reused": first_then_cached})
    m = samples.summary()
    rows = [
        row(
            TITLE,
            f"{tasks}-task step: rerun, every task reused (whole command)",
            "s",
            m["cached.wall"],
            ("the first run, on an empty store", m["first.wall"]),
            target("≤ 0.25× the first run", "ratio", "<=", 0.25),
        )
    ]
    notes = [f"Tasks run by the rerun: {m['cached.ran']['median']:g} (of {tasks}).", ""]
    return {"params": {"tasks": tasks, "workers": 2}, "metrics": m, "rows": rows, "notes": notes}
