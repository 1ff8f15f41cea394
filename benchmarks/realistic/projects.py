"""The realistic workload's two projects, on the same data and the same functions: a
Normandy project (``pipeline/pipeline_conf.yml``, the processes registered by
``confs.processes``) and a Kedro 1.7 project (``pyproject.toml``, ``conf/``,
``src/bench_kedro``), both run by their whole command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from _projects import kedro_package
from layout import FLOWS, MODULES

HERE = Path(__file__).resolve().parent


def params(data: Path, out: Path, quick: bool) -> dict[str, Any]:
    """The flows' params (Kedro: ``parameters.yml``)."""
    return {
        "data_dir": str(data),
        "out_dir": str(out),
        "test_size": 0.25,
        "random_state": 7,
        "trees": 10 if quick else 25,
    }


def _copy_modules(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for module in (*MODULES, "layout"):
        shutil.copyfile(HERE / f"{module}.py", folder / f"{module}.py")


def normandy(root: Path, values: dict[str, Any]) -> Path:
    """Three flows (tag ``default``), each task a process of the project's own modules with
    its declared outputs; 2 workers."""
    if root.exists():
        shutil.rmtree(root)
    (root / "pipeline").mkdir(parents=True)
    _copy_modules(root)
    processes = {
        function: f"{module}:{function}"
        for steps in FLOWS.values()
        for _, tasks in steps
        for module, function, _ in tasks
    }
    flows = {
        flow: {
            "tags": ["default", flow],
            "params": values,
            "steps": {
                step: {
                    function: {"outputs": outputs} if outputs is not None else None
                    for _, function, outputs in tasks
                }
                for step, tasks in steps
            },
        }
        for flow, steps in FLOWS.items()
    }
    conf = {"confs": {"workers": 2, "processes": processes, "envs": {"dev": {}}}, "flows": flows}
    (root / "pipeline" / "pipeline_conf.yml").write_text(json.dumps(conf, indent=1) + "\n")
    return root




def kedro(root: Path, values: dict[str, Any]) -> Path:
    """The same pipelines as a Kedro project: ``kedro run`` runs the three (``__default__``),
    ``kedro run --pipeline NAME`` one; datasets in memory, as Normandy's variables."""
    package = kedro_package(root, "bench_kedro")
    _copy_modules(root / "src")
    shutil.copyfile(HERE / "pipeline_registry.py", package / "pipeline_registry.py")
    for env in ("base", "local"):
        (root / "conf" / env).mkdir(parents=True)
    (root / "conf" / "base" / "catalog.yml").write_text("{}\n")
    (root / "conf" / "base" / "parameters.yml").write_text(json.dumps(values, indent=1) + "\n")
    return root
