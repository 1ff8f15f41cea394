"""Importing the process modules once (issue 16), and durations without the imports, end to
end: the real ``normandy`` command on temporary projects.

The process modules here note each import (``imports.txt``: the importing process's pid
and its parent's) so that a test can tell who imported what: with the ``local`` executor,
the fork server, once, before it forks the workers (they are its children); with
``NORMANDY_PRELOAD=0`` or ``confs.preload: false``, each worker for itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

CONF = """
confs:
  workers: 2
  {confs}
  processes:
    first: heavy:first
    second: heavy:second
    third: heavy:third
    where: heavy:where
    {extra}
  envs: {{dev: {{}}}}
flows:
  main:
    tags: [default]
    steps:
      one: [first, second, third]
      two: [where]
      {more}
"""

HEAVY = """
import os
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
with open(HERE / "imports.txt", "a") as noted:
    noted.write(f"{os.getpid()} {os.getppid()}\\n")
if (HERE / "import_seconds.txt").exists():  # a Dask worker has not the command's env
    time.sleep(float((HERE / "import_seconds.txt").read_text()))
print("heavy was imported")


def first():
    pass


def second():
    pass


def third():
    pass


def where():
    (HERE / "worker.txt").write_text(f"{os.getpid()} {os.getppid()}")
"""


def _project(
    make_project, extra: str = "", more: str = "", files: dict | None = None, confs: str = ""
) -> Path:
    conf = CONF.format(extra=extra, more=more, confs=confs)
    return make_project(conf, {"heavy.py": HEAVY, **(files or {})})


def _imports(root: Path) -> list[tuple[int, int]]:
    text = (root / "imports.txt").read_text()
    return [(int(a), int(b)) for a, b in (line.split() for line in text.splitlines())]


def _history(normandy, root: Path) -> dict[str, Any]:
    shown = normandy("runs", "last", "--json", cwd=root)
    assert shown.returncode == 0, shown.output
    return json.loads(shown.stdout)


def test_a_module_is_imported_once_by_the_fork_server_before_the_workers(normandy, make_project):
    root = _project(make_project)
    result = normandy("run", "--json", cwd=root)
    assert result.returncode == 0, result.output
    (importer, _), *others = _imports(root)
    assert others == []  # once, for every task of both steps
    worker, parent = map(int, (root / "worker.txt").read_text().split())
    assert parent == importer != worker  # the fork server imported it; its child ran the task
    pids = {a["pid"] for t in _history(normandy, root)["tasks"] for a in t["attempts_detail"]}
    assert importer not in pids
    summary = json.loads(result.stdout)  # what a module prints never reaches stdout
    assert all(t["import_duration"] == 0 for t in summary["tasks"])
    log = next((root / "logs").iterdir()) / "run.log"
    text = log.read_text()
    assert "preloaded 1 module in the fork server" in text
    assert "heavy was imported" in text


def test_what_a_module_prints_at_import_is_all_in_the_log(normandy, make_project):
    """10 MB printed at import: run.log kept ~10,000 lines, the last cut mid-line, the
    rest gone without a note (issue 23). Every line is there, whole."""
    loud = HEAVY.replace(
        'print("heavy was imported")',
        'for i in range(100_000):\n    print(f"line {i:06d} " + "x" * 88)\nprint("the end")',
    )
    root = _project(make_project, files={"heavy.py": loud})
    result = normandy("run", "--json", cwd=root)
    assert result.returncode == 0, result.output
    assert "line 000000" not in result.output  # the log's, never the console's
    text = (next((root / "logs").iterdir()) / "run.log").read_text()
    printed = [line for line in text.splitlines() if line.startswith("line ")]
    assert len(printed) == 100_000
    assert all(len(line) == 100 for line in printed)
    assert printed[-1] == "line 099999 " + "x" * 88
    assert "\nthe end\n" in text


def test_a_preload_output_past_the_limit_is_cut_at_a_line_with_a_note():
    import io

    from normandy_core.executors.local._zygote import kept_output

    printed = b"".join(b"line %03d\n" % i for i in range(100))  # 9 bytes a line
    assert kept_output(io.BytesIO(printed), 900) == printed.decode()
    kept = kept_output(io.BytesIO(printed), 95)
    lines = kept.splitlines()
    assert lines[:-1] == [f"line {i:03d}" for i in range(10)]  # 90 bytes: 10 whole lines
    assert lines[-1].startswith("[normandy: 810 more bytes (90 lines) printed at import are ")
    assert "left out of this log" in lines[-1] and "confs.preload: false" in lines[-1]


@pytest.mark.parametrize("how", ["env", "confs"])
def test_preloading_can_be_turned_off(normandy, make_project, how):
    root = _project(make_project, confs="preload: false" if how == "confs" else "")
    env = {"NORMANDY_PRELOAD": "0"} if how == "env" else {}
    result = normandy("run", cwd=root, env=env)
    assert result.returncode == 0, result.output
    imports = _imports(root)
    tasks = _history(normandy, root)["tasks"]
    workers = {a["pid"] for t in tasks for a in t["attempts_detail"]}
    assert {pid for pid, _ in imports} == workers  # each worker imported it, once
    assert len(imports) == len(workers)


def test_a_module_that_fails_to_import_fails_its_tasks_with_the_real_traceback(
    normandy, make_project
):
    root = _project(
        make_project,
        extra="broken: broken:run",
        more="three: [broken, where]",
        files={"broken.py": "raise RuntimeError('broken at import')\n\ndef run():\n    pass\n"},
    )
    result = normandy("run", "--json", cwd=root)
    assert result.returncode == 1, result.output
    summary = json.loads(result.stdout)
    status = {t["key"]: t["status"] for t in summary["tasks"]}
    assert status == {
        "main.one.first": "succeeded",
        "main.one.second": "succeeded",
        "main.one.third": "succeeded",
        "main.two.where": "succeeded",
        "main.three.broken": "failed",
        "main.three.where": "succeeded",
    }
    assert 'broken.py", line 1, in <module>' in result.stderr
    assert "RuntimeError: broken at import" in result.stderr
    log = (next((root / "logs").iterdir()) / "run.log").read_text()
    assert "could not preload broken (RuntimeError: broken at import)" in log
    # the good module was still preloaded: by the fork servers (the first for step one,
    # the second for all), children of normandy, never by a worker (a server's child)
    importers = _imports(root)
    assert len({parent for _, parent in importers}) == 1
    assert all(t["import_duration"] == 0 for t in summary["tasks"] if t["status"] == "succeeded")


def test_a_module_that_starts_a_thread_is_warned_about(normandy, make_project):
    threads = (
        "import threading\n"
        "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
    )
    root = _project(make_project, files={"heavy.py": HEAVY + threads})
    result = normandy("run", cwd=root)
    assert result.returncode == 0, result.output
    assert "preloading started threads in the fork server" in result.stderr
    assert "NORMANDY_PRELOAD=0" in result.stderr


@pytest.mark.parametrize("executor", ["local", "serial", "dask"])
def test_a_tasks_duration_is_its_work_and_its_import_is_recorded_apart(
    normandy, make_project, executor_args, executor
):
    root = _project(make_project, files={"import_seconds.txt": "1"})
    env = {"NORMANDY_PRELOAD": "0"}
    args = [*executor_args(executor), "--json"]
    result = normandy("run", *args, cwd=root, env=env, timeout=180)
    assert result.returncode == 0, result.output
    summary = {t["key"]: t for t in json.loads(result.stdout)["tasks"]}
    history = {t["key"]: t for t in _history(normandy, root)["tasks"]}
    importers = [k for k, t in summary.items() if t["import_duration"] > 0]
    assert importers  # the first task of each process that imported the module
    for key in importers:
        task, recorded = summary[key], history[key]
        assert task["import_duration"] >= 1.0  # the module sleeps 1 s when imported
        assert task["duration"] < task["import_duration"]  # a no-op's work, not the import
        assert recorded["import_duration"] == pytest.approx(task["import_duration"], abs=1e-3)
        (attempt,) = recorded["attempts_detail"]
        assert attempt["import_duration"] == pytest.approx(task["import_duration"], abs=1e-3)
    if executor == "serial":  # one process: imported by its first task only
        assert importers == ["main.one.first"]
    table = normandy("runs", "last", cwd=root).stdout.splitlines()
    assert "IMPORT" in next(line for line in table if line.startswith("FLOW")).split()
    report = normandy("report", "last", "--output", str(root / "r.html"), cwd=root)
    assert report.returncode == 0, report.output
    assert "before its work (not in its duration)" in (root / "r.html").read_text()


def test_the_summary_shows_the_import_column_only_where_a_worker_imported(
    normandy, make_project
):
    root = _project(make_project, files={"import_seconds.txt": "0.1"})
    preloaded = normandy("run", "--no-progress", cwd=root)
    assert "IMPORT" not in preloaded.stderr
    alone = normandy("run", "--no-progress", cwd=root, env={"NORMANDY_PRELOAD": "0"})
    header = next(line for line in alone.stderr.splitlines() if line.startswith("FLOW"))
    assert header.split() == ["FLOW", "STEP", "TASK", "STATUS", "ATTEMPTS", "DURATION", "IMPORT"]


def test_a_module_that_hangs_when_imported_does_not_hang_the_run(normandy, make_project):
    hangs = "import time\ntime.sleep(60)\n\ndef run():\n    pass\n"
    root = _project(
        make_project,
        extra="stuck: stuck:run",
        more="three:\n        stuck: {timeout: 2}\n        where:",
        files={"stuck.py": hangs},
    )
    result = normandy("run", "--json", cwd=root, env={"NORMANDY_PRELOAD_BUDGET": "1"})
    assert result.returncode == 1, result.output
    status = {t["key"]: t["status"] for t in json.loads(result.stdout)["tasks"]}
    assert status["main.one.first"] == status["main.three.where"] == "succeeded"
    assert status["main.three.stuck"] == "timed out"  # its worker imported it, and hung
    log = (next((root / "logs").iterdir()) / "run.log").read_text()
    assert "could not preload stuck (still importing after 1 s: given up)" in log


TWO_STEPS = """
confs:
  workers: 2
  processes: {early: "mod_early:run", late: "mod_late:run"}
  envs: {dev: {}}
flows:
  main:
    tags: [default]
    steps:
      one: [early]
      two: [late]
"""

NOTING = """
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
with open(HERE / "imports.txt", "a") as noted:
    noted.write(f"{__name__} {os.getpid()} {os.getppid()}\\n")


def run(pipe):
    (HERE / f"ran-{pipe.step}.txt").write_text(f"{os.getpid()} {os.getppid()}")
"""


def test_the_first_step_does_not_wait_for_the_later_steps_modules(normandy, make_project):
    """The server imports what step one needs, forks its workers, then imports what step
    two needs while step one runs; step two's worker is forked after, with it."""
    late = NOTING.replace(
        "import os\n", "import os\nimport time\ntime.sleep(0.5)\nENDED = time.time()\n", 1
    )
    late += "\n\n(HERE / 'late-imported.txt').write_text(str(ENDED))\n"
    early = NOTING.replace(
        "def run(pipe):\n",
        "def run(pipe):\n    import time\n"
        "    (HERE / f'began-{pipe.step}.txt').write_text(str(time.time()))\n",
    )
    root = make_project(TWO_STEPS, {"mod_early.py": early, "mod_late.py": late})
    result = normandy("run", "--json", cwd=root)
    assert result.returncode == 0, result.output
    imports = [line.split() for line in (root / "imports.txt").read_text().splitlines()]
    importers = {name: [int(pid) for n, pid, _ in imports if n == name] for name, *_ in imports}
    assert len(importers["mod_early"]) == len(importers["mod_late"]) == 1  # once each
    assert importers["mod_early"] == importers["mod_late"]  # by the one fork server
    (server,) = importers["mod_late"]
    began = float((root / "began-one.txt").read_text())
    assert began < float((root / "late-imported.txt").read_text())  # it did not wait
    ran = {step: (root / f"ran-{step}.txt").read_text().split() for step in ("one", "two")}
    assert {int(pids[1]) for pids in ran.values()} == {server}  # its workers
    summary = json.loads(result.stdout)
    assert all(t["import_duration"] == 0 for t in summary["tasks"])
    log = (next((root / "logs").iterdir()) / "run.log").read_text()
    assert log.count("preloaded 1 module in the fork server") == 2


def test_a_run_whose_every_task_is_reused_starts_no_process_and_imports_nothing(
    normandy, make_project
):
    """SPEC 17: decided before anything is warmed up. The rerun of an unchanged project
    with the cache on reuses both tasks: no fork server, no worker, no import."""
    conf = TWO_STEPS.replace("  workers: 2\n", "  workers: 2\n  cache: true\n")
    root = make_project(conf, {"mod_early.py": NOTING, "mod_late.py": NOTING})
    first = normandy("run", "--json", cwd=root)
    assert first.returncode == 0, first.output
    imported = (root / "imports.txt").read_text()
    again = normandy("run", "--json", cwd=root)
    assert again.returncode == 0, again.output
    assert {t["status"] for t in json.loads(again.stdout)["tasks"]} == {"cached"}
    assert (root / "imports.txt").read_text() == imported  # nothing imported again
    run_id = json.loads(again.stdout)["run_id"]
    log = (root / "logs" / run_id / "run.log").read_text()
    assert "preloaded" not in log and "started on worker" not in log


LEARNED_CONF = """
confs:
  workers: 1
  processes: {make: "maker:make", use: "user:use"}
  envs: {dev: {}}
flows:
  main:
    tags: [default]
    steps:
      fit:
        make: {outputs: thing, cache: true}
      save:
        use: {}
"""

MAKER = """
from things import Thing


def make():
    return Thing(3)
"""

THINGS = """
class Thing:
    def __init__(self, n):
        self.n = n
"""

USER = """
import sys


def use(pipe):
    present = "things" in sys.modules
    thing = pipe.vars["thing"]  # unpickling it imports the module of its class
    with open(pipe.path / "seen.txt", "a") as seen:
        seen.write(f"{present} {thing.n}\\n")
"""


def test_the_modules_a_task_imported_are_imported_ahead_the_next_time(normandy, make_project):
    """Issue 26: a writer unpickling a model paid the import of its library in its task
    whenever the model's task was reused (its module, which imports the library, then
    not preloaded). The modules a task imported are learned, and imported ahead the next
    time (as the task's trace noted them: asked for, even where they were there already);
    still asked for the time after, they stay learned."""
    root = make_project(LEARNED_CONF, {"maker.py": MAKER, "things.py": THINGS, "user.py": USER})
    for _ in range(4):
        result = normandy("run", "--no-progress", cwd=root)
        assert result.returncode == 0, result.output
    seen = (root / "seen.txt").read_text().split("\n")[:4]
    # 1: made in this run, by a module preloaded for its task; 2, 3, 4: the maker reused,
    # its module not imported, but the user's trace of run 1 noted that unpickling the
    # thing asks for its module: learned, imported ahead (without it: False)
    assert seen == ["True 3", "True 3", "True 3", "True 3"]
    runs = json.loads(normandy("runs", "--json", cwd=root).stdout)
    log = (root / "logs" / runs[0]["id"] / "run.log").read_text()
    assert "preloaded 2 modules in the fork server" in log and ": user, things" in log


LOOK_AHEAD = """
confs:
  workers: 1
  processes: {wait: "waiter:wait", again: "waiter:again", late: "mod_late:late"}
  envs: {dev: {}}
flows:
  first:
    tags: [default]
    steps:
      one: [wait]
      two: [again]
  second:
    tags: [default]
    steps:
      three: [late]
"""

WAITER = """
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def wait():
    deadline = time.monotonic() + 30
    while not (HERE / "late-began.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    (HERE / "seen.txt").write_text(str((HERE / "late-began.txt").exists()))


def again():
    pass
"""

LATE = """
from pathlib import Path

(Path(__file__).resolve().parent / "late-began.txt").write_text("")


def late():
    pass
"""


def test_the_next_step_needing_a_new_module_is_imported_for_while_this_one_runs(
    normandy, make_project
):
    """Issue 26: a later flow's scikit-learn was imported only when that flow started,
    while nothing else ran, the steps between needing no new module. While step one runs,
    the server imports the next step's modules and those of the first step after it
    whose process module was not asked for yet: step three's (without it, step one's
    task waits 30 s in vain)."""
    root = make_project(LOOK_AHEAD, {"waiter.py": WAITER, "mod_late.py": LATE})
    result = normandy("run", "--no-progress", cwd=root)
    assert result.returncode == 0, result.output
    assert (root / "seen.txt").read_text() == "True"
