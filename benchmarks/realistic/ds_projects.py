"""The datasets workload's two projects, on the same data and functions: a Normandy
project whose files are ``confs.datasets`` (normandy-io's types) and a Kedro 1.7 project
whose files are ``catalog.yml`` entries (kedro-datasets), both run by their whole command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from _projects import kedro_package
from ds_layout import FLOWS, MODULES, datasets, kedro_catalog

HERE = Path(__file__).resolve().parent


def _copy_modules(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for module in (*MODULES, "ds_layout"):
        shutil.copyfile(HERE / f"{module}.py", folder / f"{module}.py")


def normandy(root: Path, data: Path, values: dict[str, Any], cache: bool = False) -> Path:
    """Three flows (tag ``default``), their files datasets, the processes the project's
    own (``confs.processes``); 2 workers; ``cache`` on every task or none."""
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
                step: {function: {"outputs": outputs} for _, function, outputs in tasks}
                for step, tasks in steps
            },
        }
        for flow, steps in FLOWS.items()
    }
    confs = {
        "workers": 2,
        "cache": cache,
        "processes": processes,
        "datasets": datasets(str(data)),
        "envs": {"dev": {}},
    }
    conf = {"confs": confs, "flows": flows}
    (root / "pipeline" / "pipeline_conf.yml").write_text(json.dumps(conf, indent=1) + "\n")
    return root


def kedro(root: Path, data: Path, values: dict[str, Any]) -> Path:
    """The same pipelines as a Kedro project, its files in ``conf/base/catalog.yml``."""
    package = kedro_package(root, "bench_kedro")
    _copy_modules(root / "src")
    shutil.copyfile(HERE / "ds_pipeline_registry.py", package / "pipeline_registry.py")
    for env in ("base", "local"):
        (root / "conf" / env).mkdir(parents=True)
    catalog = kedro_catalog(str(data))
    (root / "conf" / "base" / "catalog.yml").write_text(json.dumps(catalog, indent=1) + "\n")
    (root / "conf" / "base" / "parameters.yml").write_text(json.dumps(values, indent=1) + "\n")
    return root
