"""Temporary Normandy projects for the workloads.

Every project registers its processes the way a team would without installing anything:
a project-local plugin module listed in ``confs.plugins`` whose ``normandy_processes`` hook
returns ``"module:function"`` strings (so ``list`` imports no process module). The work
itself is ``work.py`` of this folder, copied into the project as ``bench_work``, so Normandy,
Kedro and the raw references run the very same code.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from _harness import HERE

PROCS = '''\
"""The processes of the benchmark projects."""

import time

from bench_work import burn, chatter, make_data, note, total


def noop():
    pass


def burn_task(params):
    burn(params["iterations"])


def produce(pipe, params):
    started = time.time()
    data = make_data(params["kind"], params["nbytes"])
    created = time.time()
    pipe.vars["data"] = data
    note(params["timing"], started=started, created=created, written=time.time())


def chatty(log, params):
    started = time.time()
    chatter(params["lines"], params["width"], params["how"], log=log)
    note(params["timing"], started=started, emitted=time.time())


def consume(pipe, params):
    opened = time.time()
    data = pipe.vars["data"]
    loaded = time.time()
    result = total(data)
    note(params["timing"], opened=opened, loaded=loaded, summed=time.time(), total=result)
'''

PLUGIN = """\
from normandy_core import hookimpl

PROCESSES = {processes}


@hookimpl
def normandy_processes():
    return PROCESSES
"""


def _write(root: Path, conf: dict, processes: dict[str, str], files: dict[str, str]) -> Path:
    """A project at ``root``: ``pipeline_conf.yml`` from ``conf`` (JSON is YAML), the
    plugin registering ``processes`` (name -> "module:function") and ``files``."""
    if root.exists():
        shutil.rmtree(root)
    (root / "pipeline").mkdir(parents=True)
    conf = {"confs": {"workers": 2, "plugins": ["bench_plugin"], "envs": {"dev": {}}}, **conf}
    (root / "pipeline" / "pipeline_conf.yml").write_text(json.dumps(conf, indent=1) + "\n")
    listing = "{\n" + "".join(f"    {n!r}: {t!r},\n" for n, t in processes.items()) + "}"
    (root / "bench_plugin.py").write_text(PLUGIN.format(processes=listing))
    shutil.copyfile(HERE / "work.py", root / "bench_work.py")
    (root / "bench_procs.py").write_text(PROCS)
    for rel, text in files.items():
        (root / rel).write_text(text)
    return root


def _flow(steps: Iterable[tuple[str, list]], params: dict | None = None) -> dict:
    flow: dict = {"tags": ["default"], "steps": dict(steps)}
    if params:
        flow["params"] = params
    return flow


def noops(root: Path, steps: int, per_step: int) -> Path:
    """One flow of ``steps`` steps of ``per_step`` no-op processes each, every process a
    name of its own (``noop_<step>_<i>``): the fan-out is ``noops(1, 200)``, the chain
    ``noops(100, 1)``, a one-task run ``noops(1, 1)``."""
    names = [[f"noop_{s:03d}_{i:03d}" for i in range(per_step)] for s in range(steps)]
    processes = {n: "bench_procs:noop" for step in names for n in step}
    flow = _flow((f"s{s:03d}", step) for s, step in enumerate(names))
    return _write(root, {"flows": {"bench": flow}}, processes, {})


def cpu(root: Path, tasks: int, iterations: int) -> Path:
    """One step of ``tasks`` processes burning the CPU in pure Python."""
    names = [f"burn_{i}" for i in range(tasks)]
    flow = _flow([("burn", names)], {"iterations": iterations})
    return _write(
        root, {"flows": {"bench": flow}}, dict.fromkeys(names, "bench_procs:burn_task"), {}
    )


def handoff(root: Path, kind: str, nbytes: int, timing: Path) -> Path:
    """Step ``write`` stores the data as a variable, step ``read`` reads and sums it."""
    flow = _flow(
        [("write", ["produce"]), ("read", ["consume"])],
        {"kind": kind, "nbytes": nbytes, "timing": str(timing)},
    )
    processes = {"produce": "bench_procs:produce", "consume": "bench_procs:consume"}
    return _write(root, {"flows": {"bench": flow}}, processes, {})


def registry(root: Path, count: int) -> Path:
    """``count`` distinct processes in modules of 100 functions each, all used by flows of
    10 steps of 10 processes (so ``validate`` checks every one)."""
    modules: dict[str, list[str]] = {}
    processes = {}
    for i in range(count):
        module = f"bench_many_{i // 100:02d}"
        modules.setdefault(module, []).append(f"p{i:05d}")
        processes[f"p{i:05d}"] = f"{module}:p{i:05d}"
    files = {
        f"{module}.py": "".join(f"def {fn}(pipe, log, params):\n    pass\n\n\n" for fn in fns)
        for module, fns in modules.items()
    }
    names = list(processes)
    flows = {}
    for f in range(0, len(names), 100):
        chunk = names[f : f + 100]
        steps = ((f"s{s // 10}", chunk[s : s + 10]) for s in range(0, len(chunk), 10))
        flows[f"flow{f // 100:03d}"] = _flow(steps)
    return _write(root, {"flows": flows}, processes, files)


def plan(root: Path, tasks: int) -> Path:
    """``tasks`` tasks: flows of 10 steps, each step 4 processes with an ``iter_param`` of
    25 values (100 tasks a step), as a big config would spell them."""
    per_step, values = 4, 25
    steps_total = max(1, tasks // (per_step * values))
    processes = {f"p{i:02d}": "bench_procs:noop" for i in range(20)}
    names = list(processes)
    flows: dict = {}
    for s in range(steps_total):
        flow = flows.setdefault(f"flow{s // 10:03d}", _flow([]))
        entries = {}
        for k in range(per_step):
            name = names[(s * per_step + k) % len(names)]
            entries[name] = {
                "params": {"step": s, "label": f"part-{k}"},
                "iter_param": {"name": "item", "values": [f"v{v:03d}" for v in range(values)]},
            }
        flow["steps"][f"s{s % 10}"] = entries
    return _write(root, {"flows": flows}, processes, {})


def chatty(root: Path, lines: int, width: int, how: str, timing: Path) -> Path:
    """One task printing (``how="print"``) or logging (``"log"``) ``lines`` lines."""
    params = {"lines": lines, "width": width, "how": how, "timing": str(timing)}
    flow = _flow([("talk", ["chatty"])], params)
    return _write(root, {"flows": {"bench": flow}}, {"chatty": "bench_procs:chatty"}, {})


KEDRO_PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1"

[tool.kedro]
package_name = "{package}"
project_name = "{dist}"
kedro_init_version = "1.7.0"
source_dir = "src"
"""


def kedro_package(root: Path, package: str) -> Path:
    """A Kedro 1.7 project at ``root`` (emptied first): its ``pyproject.toml`` and the
    package ``src/<package>`` with Kedro's default settings; the package's folder (its
    ``pipeline_registry.py`` and the project's ``conf/`` are the caller's)."""
    if root.exists():
        shutil.rmtree(root)
    folder = root / "src" / package
    folder.mkdir(parents=True)
    dist = package.replace("_", "-")
    (root / "pyproject.toml").write_text(KEDRO_PYPROJECT.format(dist=dist, package=package))
    (folder / "__init__.py").write_text('__version__ = "0.1"\n')
    (folder / "settings.py").write_text('"""Kedro\'s defaults."""\n')
    return folder
