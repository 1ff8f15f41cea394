"""``normandy create-project``: a project that runs at once and is itself a package of
processes (SPEC 10)."""

from __future__ import annotations

import re
from pathlib import Path

from normandy_core.errors import NormandyError, display_path


class ProjectExistsError(NormandyError):
    """create-project would overwrite files (without ``--force``)."""


def package_name(path: Path) -> str:
    """``my-pipelines`` -> ``my_pipelines``: a valid Python package name for the project."""
    name = re.sub(r"[^0-9a-zA-Z_]+", "_", path.resolve().name).strip("_").lower() or "pipelines"
    return f"p_{name}" if name[0].isdigit() else name


def create_project(path: Path, *, force: bool = False) -> list[Path]:
    """Write the project's files under ``path``; return them. Refuses to overwrite any
    existing file unless ``force``."""
    pkg = package_name(path)
    files = {
        rel.replace("{pkg}", pkg): text.replace("{pkg}", pkg).replace(
            "{dist}", pkg.replace("_", "-")
        )
        for rel, text in _FILES.items()
    }
    existing = [rel for rel in files if (path / rel).exists()]
    if existing and not force:
        shown = ", ".join(existing[:5]) + (" …" if len(existing) > 5 else "")
        raise ProjectExistsError(
            f"{display_path(path)} already holds {shown}; choose an empty folder, or pass "
            "--force to overwrite these files"
        )
    written = []
    for rel, text in files.items():
        target = path / rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text.lstrip("\n"), encoding="utf-8")
        except OSError as exc:
            raise NormandyError(
                f"cannot write {display_path(target)}: {exc.strerror or exc}; choose a "
                "folder you can write to"
            ) from None
        written.append(target)
    return written


_CONF = """
# The pipelines of this project. `normandy run` runs the flows tagged `default`;
# `normandy graph` draws them, `normandy validate` checks this file.
confs:
  workers: 2
  log_level: info
  # The processes of src/{pkg}, found without installing the project. Once it is
  # pip-installed, its entry points (setup.cfg) register the same processes.
  plugins: [{pkg}.plugin]
  default_env: dev
  envs:
    dev:
      credentials: conf/dev_credentials.yml
      read: data/dev/raw
      write: data/dev/out
    prod:
      credentials: conf/prod_credentials.yml
      read: "${env:ORDERS_ROOT:data/prod}/raw"
      write: "${env:ORDERS_ROOT:data/prod}/out"

flows:
  orders:
    tags: [default, nightly]
    params: {currency: EUR}
    steps:
      extract:
        - extract_orders
        - extract_customers
      transform:
        transform_totals:
          params: {min_total: 10}
        transform_countries:
      upload:
        - upload_report
        - upload_database
"""

_PROCESSES = '''
"""The processes of this project: plain functions taking any of pipe, log, params."""

from __future__ import annotations

import csv
import logging
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def extract_orders(pipe: Any, log: logging.Logger) -> None:
    """Read the orders CSV of the env's `read` folder into the variable `orders`."""
    rows = _read(pipe.path / pipe.confs["read"] / "orders.csv")
    pipe.vars["orders"] = rows
    log.info("extracted %d orders", len(rows))


def extract_customers(pipe: Any, log: logging.Logger) -> None:
    """Read the customers CSV into the variable `customers`."""
    rows = _read(pipe.path / pipe.confs["read"] / "customers.csv")
    pipe.vars["customers"] = {row["customer_id"]: row for row in rows}
    log.info("extracted %d customers", len(rows))


def transform_totals(pipe: Any, log: logging.Logger, params: dict[str, Any]) -> None:
    """Total amount per customer, keeping totals of at least `min_total`."""
    totals: dict[str, float] = defaultdict(float)
    for order in pipe.vars["orders"]:
        totals[order["customer_id"]] += float(order["amount"])
    kept = {c: round(t, 2) for c, t in totals.items() if t >= params["min_total"]}
    pipe.vars["totals"] = kept
    log.info("%d customers with a total of at least %s %s",
             len(kept), params["min_total"], params["currency"])


def transform_countries(pipe: Any, log: logging.Logger) -> None:
    """Number of orders per country."""
    customers = pipe.vars["customers"]
    counts: dict[str, int] = defaultdict(int)
    for order in pipe.vars["orders"]:
        counts[customers[order["customer_id"]]["country"]] += 1
    pipe.vars["orders_by_country"] = dict(sorted(counts.items()))
    log.info("orders in %d countries", len(counts))


def upload_report(pipe: Any, log: logging.Logger, params: dict[str, Any]) -> None:
    """Write report.csv in the env's `write` folder and print it."""
    out = pipe.path / pipe.confs["write"]
    out.mkdir(parents=True, exist_ok=True)
    customers = pipe.vars["customers"]
    with (out / "report.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer", "country", f"total_{params['currency'].lower()}"])
        for customer_id, total in sorted(pipe.vars["totals"].items()):
            row = customers[customer_id]
            writer.writerow([row["name"], row["country"], total])
            print(f"{row['name']:<12} {row['country']:<8} {total:>10.2f} {params['currency']}")
    log.info("wrote %s", out / "report.csv")


def upload_database(pipe: Any, log: logging.Logger) -> None:
    """Load the totals and the orders per country into SQLite (the env's `write` folder)."""
    out = pipe.path / pipe.confs["write"]
    out.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(out / "orders.sqlite") as db:
        db.execute("DROP TABLE IF EXISTS totals")
        db.execute("CREATE TABLE totals (customer_id TEXT PRIMARY KEY, total REAL)")
        db.executemany("INSERT INTO totals VALUES (?, ?)", pipe.vars["totals"].items())
        db.execute("DROP TABLE IF EXISTS orders_by_country")
        db.execute("CREATE TABLE orders_by_country (country TEXT PRIMARY KEY, orders INTEGER)")
        db.executemany("INSERT INTO orders_by_country VALUES (?, ?)",
                       pipe.vars["orders_by_country"].items())
    log.info("wrote %s", out / "orders.sqlite")
'''

_PLUGIN = '''
"""Registers this project's processes with Normandy (listed in confs.plugins)."""

from normandy_core import hookimpl

PROCESSES = ["extract_orders", "extract_customers", "transform_totals",
             "transform_countries", "upload_report", "upload_database"]


@hookimpl
def normandy_processes() -> dict[str, str]:
    return {name: f"{pkg}.processes:{name}" for name in PROCESSES}
'''

_TESTS = '''
"""Tests of the processes, run on their own with a small fake pipe."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

from {pkg} import processes

ROOT = Path(__file__).resolve().parents[1]


def make_pipe(tmp_path: Path) -> SimpleNamespace:
    return SimpleNamespace(path=ROOT, confs={"read": "data/dev/raw", "write": str(tmp_path)},
                           vars={})


def test_the_whole_flow(tmp_path: Path) -> None:
    pipe = make_pipe(tmp_path)
    log = logging.getLogger("test")
    params = {"min_total": 10, "currency": "EUR"}
    processes.extract_orders(pipe, log)
    processes.extract_customers(pipe, log)
    processes.transform_totals(pipe, log, params)
    processes.transform_countries(pipe, log)
    processes.upload_report(pipe, log, params)
    processes.upload_database(pipe, log)
    assert pipe.vars["totals"] == {"c1": 70.5, "c2": 12.0, "c3": 99.9}
    assert pipe.vars["orders_by_country"] == {"FR": 3, "NO": 2, "PT": 1}
    assert (tmp_path / "report.csv").read_text().splitlines()[0] == "customer,country,total_eur"
'''

_SETUP = """
[metadata]
name = {dist}
version = 0.1.0
description = The processes and pipelines of {dist}

[options]
package_dir =
    = src
packages = find:
python_requires = >=3.10
install_requires =
    normandy

[options.packages.find]
where = src

[options.entry_points]
normandy.processes =
    extract_orders = {pkg}.processes:extract_orders
    extract_customers = {pkg}.processes:extract_customers
    transform_totals = {pkg}.processes:transform_totals
    transform_countries = {pkg}.processes:transform_countries
    upload_report = {pkg}.processes:upload_report
    upload_database = {pkg}.processes:upload_database

[options.extras_require]
test = pytest
"""

_PYPROJECT = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[tool.pytest.ini_options]
pythonpath = ["src"]
testpaths = ["tests"]
"""

_README = """
# {dist}

A Normandy project: pipelines in `pipeline/pipeline_conf.yml`, their processes in
`src/{pkg}/processes.py`.

```bash
normandy run                 # the flows tagged `default`, env dev
normandy run --env prod      # prod settings and credentials
normandy graph               # what runs, in which order
normandy runs                # what ran
python -m pytest             # the processes' tests
```

Results land in `data/dev/out/` (a CSV report and a SQLite database); logs in `logs/`.

## Sharing the processes

This project is a pip-installable package: `pip install .` (or
`pip install git+https://…/{dist}`) registers its processes through the entry points
in `setup.cfg`, so another project can use `extract_orders` & co. in its own flows
without copying code.

## Credentials

`conf/dev_credentials.yml` and `conf/prod_credentials.yml` are kept out of git (see
`.gitignore`); copy `conf/credentials.example.yml` to create them. Processes read them as
`pipe.credentials`; their values are masked (`***`) in every log.
"""

_GITIGNORE = """
logs/
.normandy/
data/*/out/
conf/*_credentials.yml
__pycache__/
*.egg-info/
build/
"""

_CREDENTIALS = """
# Copy to conf/dev_credentials.yml and conf/prod_credentials.yml (kept out of git).
# Values may come from the environment: ${env:NAME} or ${env:NAME:default}.
api_token: "${env:ORDERS_API_TOKEN:change-me}"
"""

_ORDERS = """
order_id,customer_id,amount
1,c1,20.5
2,c2,12.0
3,c1,50.0
4,c3,99.9
5,c4,3.5
6,c1,0.0
"""

_CUSTOMERS = """
customer_id,name,country
c1,Liara,FR
c2,Garrus,NO
c3,Tali,PT
c4,Wrex,NO
"""

_FILES = {
    "pipeline/pipeline_conf.yml": _CONF,
    "src/{pkg}/__init__.py": '"""The processes of this Normandy project."""\n',
    "src/{pkg}/processes.py": _PROCESSES,
    "src/{pkg}/plugin.py": _PLUGIN,
    "tests/test_processes.py": _TESTS,
    "setup.cfg": _SETUP,
    "pyproject.toml": _PYPROJECT,
    "README.md": _README,
    ".gitignore": _GITIGNORE,
    "conf/credentials.example.yml": _CREDENTIALS,
    "conf/dev_credentials.yml": _CREDENTIALS.split("\n", 3)[-1],
    "conf/prod_credentials.yml": _CREDENTIALS.split("\n", 3)[-1],
    "data/dev/raw/orders.csv": _ORDERS,
    "data/dev/raw/customers.csv": _CUSTOMERS,
}
