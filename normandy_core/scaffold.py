"""``normandy create-project``: a project that runs at once and is itself a package of
processes (SPEC 10)."""

from __future__ import annotations

import re
from pathlib import Path

from normandy_core.errors import NormandyError, ProjectExistsError, display_path


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
# `normandy graph` draws them, `normandy validate` checks this file. The processes are
# registered once, by the entry points of setup.cfg: Normandy reads them from there
# whether this project is pip-installed or not.
confs:
  workers: 2
  log_level: info
  default_env: dev
  envs:
    dev:                # the sample data of data/dev/raw; no credentials needed
      read: data/dev/raw
      write: data/dev/out
    prod:               # ORDERS_ROOT: where the real data lives (default: the sample)
      credentials: conf/prod_credentials.yml   # kept out of git; from conf/credentials.example.yml
      read: "${env:ORDERS_ROOT:data/prod}/raw"
      write: "${env:ORDERS_ROOT:data/prod}/out"

# A process's parameters are its inputs: the variables of those names, which earlier
# steps output. `outputs:` names the variable its return value becomes.
flows:
  orders:
    tags: [default, nightly]
    params: {currency: EUR}
    steps:
      extract:
        {pkg}.extract_orders: {outputs: orders}
        {pkg}.extract_customers: {outputs: customers}
      transform:
        {pkg}.transform_totals: {outputs: totals, params: {min_total: 10}}
        {pkg}.transform_countries: {outputs: orders_by_country}
      upload:
        - {pkg}.upload_report
        - {pkg}.upload_database
"""

_PROCESSES = '''
"""The processes of this project: plain functions.

A process's parameters are its inputs — the variables of those names, output by earlier
steps — and its return value is its output, stored as the variable its entry names in
`outputs:` (pipeline/pipeline_conf.yml). Three names are Normandy's: `params` (the flow's
and the entry's params), `log` (a logger) and `pipe`, the run around the process — only
the extract and upload processes take it, for where the env keeps its files
(`pipe.confs`: the env's settings; `pipe.path`: the project's folder).

Each is registered as `{pkg}.<function name>` by the entry points of setup.cfg.
"""

from __future__ import annotations

import csv
import logging
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

Rows = list[dict[str, str]]


def _read(path: Path) -> Rows:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def extract_orders(pipe: Any, log: logging.Logger) -> Rows:
    """The orders CSV of the env's `read` folder."""
    rows = _read(pipe.path / pipe.confs["read"] / "orders.csv")
    log.info("extracted %d orders", len(rows))
    return rows


def extract_customers(pipe: Any, log: logging.Logger) -> dict[str, dict[str, str]]:
    """The customers CSV, by customer id."""
    rows = _read(pipe.path / pipe.confs["read"] / "customers.csv")
    log.info("extracted %d customers", len(rows))
    return {row["customer_id"]: row for row in rows}


def transform_totals(
    orders: Rows, params: dict[str, Any], log: logging.Logger
) -> dict[str, float]:
    """Total amount per customer, keeping totals of at least `min_total`."""
    totals: dict[str, float] = defaultdict(float)
    for order in orders:
        totals[order["customer_id"]] += float(order["amount"])
    kept = {c: round(t, 2) for c, t in totals.items() if t >= params["min_total"]}
    log.info("%d customers with a total of at least %s %s",
             len(kept), params["min_total"], params["currency"])
    return kept


def transform_countries(
    orders: Rows, customers: dict[str, dict[str, str]], log: logging.Logger
) -> dict[str, int]:
    """Number of orders per country."""
    counts: dict[str, int] = defaultdict(int)
    for order in orders:
        counts[customers[order["customer_id"]]["country"]] += 1
    log.info("orders in %d countries", len(counts))
    return dict(sorted(counts.items()))


def upload_report(
    totals: dict[str, float],
    customers: dict[str, dict[str, str]],
    pipe: Any,
    params: dict[str, Any],
    log: logging.Logger,
) -> None:
    """Write report.csv in the env's `write` folder and print it."""
    out = pipe.path / pipe.confs["write"]
    out.mkdir(parents=True, exist_ok=True)
    with (out / "report.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer", "country", f"total_{params['currency'].lower()}"])
        for customer_id, total in sorted(totals.items()):
            row = customers[customer_id]
            writer.writerow([row["name"], row["country"], total])
            print(f"{row['name']:<12} {row['country']:<8} {total:>10.2f} {params['currency']}")
    log.info("wrote %s", out / "report.csv")


def upload_database(
    totals: dict[str, float], orders_by_country: dict[str, int], pipe: Any, log: logging.Logger
) -> None:
    """Load the totals and the orders per country into SQLite (the env's `write` folder)."""
    out = pipe.path / pipe.confs["write"]
    out.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(out / "orders.sqlite") as db:
        db.execute("DROP TABLE IF EXISTS totals")
        db.execute("CREATE TABLE totals (customer_id TEXT PRIMARY KEY, total REAL)")
        db.executemany("INSERT INTO totals VALUES (?, ?)", totals.items())
        db.execute("DROP TABLE IF EXISTS orders_by_country")
        db.execute("CREATE TABLE orders_by_country (country TEXT PRIMARY KEY, orders INTEGER)")
        db.executemany("INSERT INTO orders_by_country VALUES (?, ?)", orders_by_country.items())
    log.info("wrote %s", out / "orders.sqlite")
'''

_TESTS = '''
"""Tests of the processes, with Normandy's pytest plugin (it comes with Normandy):

- `run_process(name, ...)` runs one process as a run of this project would: its entry's
  params from pipeline/pipeline_conf.yml, `inputs` as the variables of earlier steps,
  its env's settings, its log and prints captured (`result.messages`, `result.stdout`);
- `normandy_project()` is a temporary copy of this project, run with the real command.
"""

from __future__ import annotations

import pytest

ORDERS = [
    {"order_id": "1", "customer_id": "c1", "amount": "20.5"},
    {"order_id": "2", "customer_id": "c2", "amount": "8.0"},
    {"order_id": "3", "customer_id": "c1", "amount": "50.0"},
]
CUSTOMERS = {
    "c1": {"customer_id": "c1", "name": "Liara", "country": "FR"},
    "c2": {"customer_id": "c2", "name": "Garrus", "country": "NO"},
}


def test_transform_totals_keeps_totals_of_at_least_min_total(run_process):
    result = run_process("{pkg}.transform_totals", inputs={"orders": ORDERS})
    assert result.outputs["totals"] == {"c1": 70.5}  # min_total: 10, from its entry
    assert result.messages == ["1 customers with a total of at least 10 EUR"]


def test_transform_countries_counts_orders(run_process):
    inputs = {"orders": ORDERS, "customers": CUSTOMERS}
    result = run_process("{pkg}.transform_countries", inputs=inputs)
    assert result.outputs["orders_by_country"] == {"FR": 2, "NO": 1}


@pytest.mark.parametrize(("env", "orders"), [("dev", 6), ("prod", 8)])
def test_extract_reads_the_sample_data_of_each_env(run_process, env, orders):
    # fake credentials: prod's real ones are kept out of git
    result = run_process("{pkg}.extract_orders", env=env, credentials={"api_token": "test"})
    assert len(result.outputs["orders"]) == orders


def test_upload_report_writes_and_prints_the_report(run_process, tmp_path):
    result = run_process(
        "{pkg}.upload_report",
        inputs={"totals": {"c1": 70.5}, "customers": CUSTOMERS},
        confs={"write": str(tmp_path)},  # instead of the env's folder
    )
    lines = (tmp_path / "report.csv").read_text().splitlines()
    assert lines == ["customer,country,total_eur", "Liara,FR,70.5"]
    assert result.stdout.split() == ["Liara", "FR", "70.50", "EUR"]


def test_the_whole_flow(normandy_project):
    project = normandy_project()
    result = project.run()
    assert result.exit_code == 0, result.stderr
    assert project.load("totals") == {"c1": 70.5, "c2": 12.0, "c3": 99.9}
    assert project.load("orders_by_country") == {"FR": 3, "NO": 2, "PT": 1}
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
    # 1.x, not on PyPI (its 0.x releases are the original Normandy of 2021, another
    # program): README.md, "Installing Normandy 1.x", says how to install it
    normandy>=1.0,<2

[options.packages.find]
where = src

# The one list of this project's processes. Normandy reads it from this file to run this
# project, installed or not; once installed (pip install .), any project can use them.
[options.entry_points]
normandy.processes =
    {pkg}.extract_orders = {pkg}.processes:extract_orders
    {pkg}.extract_customers = {pkg}.processes:extract_customers
    {pkg}.transform_totals = {pkg}.processes:transform_totals
    {pkg}.transform_countries = {pkg}.processes:transform_countries
    {pkg}.upload_report = {pkg}.processes:upload_report
    {pkg}.upload_database = {pkg}.processes:upload_database

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
`src/{pkg}/processes.py`, registered once by the entry points of `setup.cfg`.

```bash
pip install -e ".[test]"     # this project (editable) and pytest; Normandy 1.x first (below)
normandy run                 # the flows tagged `default`, env dev (the sample data)
normandy graph               # what runs, in which order, and the data between the steps
normandy runs                # what ran
python -m pytest             # the processes' tests
cp conf/credentials.example.yml conf/prod_credentials.yml   # once per clone: prod's secrets
normandy run --env prod      # prod settings and credentials
```

Results land in `data/<env>/out/` (a CSV report and a SQLite database); logs in `logs/`.
The env `prod` reads `$ORDERS_ROOT/raw` (by default `data/prod/raw`, a sample) and
writes `$ORDERS_ROOT/out`.

## Installing Normandy 1.x

This project requires `normandy>=1.0,<2`, which is not on PyPI: the `normandy` releases
there (0.2, 0.3) are the original Normandy of 2021, another program. Install Normandy 1.x
first, in one of these ways, and `pip install` this project after it:

- **a wheel built from Normandy's repository**, kept where the team finds it:
  `pip wheel --no-deps -w wheels/ path/to/normandy`, then
  `pip install --find-links wheels/ -e ".[test]"` (or `pip install wheels/normandy-*.whl`);
- **a git URL**: `pip install "normandy @ git+https://git.example.com/your-team/normandy.git@v1.0.0"`;
- **your internal index**, where the team publishes the wheel:
  `pip install --index-url https://pypi.example.com/simple/ -e ".[test]"` (or set
  `index-url`/`extra-index-url` in `pip.conf`).

## Processes

Each process is a plain function of `src/{pkg}/processes.py`. Its parameters are its
inputs — the variables of those names, output by earlier steps — and its return value
is its output, stored as the variable its entry names with `outputs:`:

```python
def transform_totals(orders, params, log):          # orders: extract_orders' output
    ...
    return kept                                     # outputs: totals
```

```yaml
      transform:
        {pkg}.transform_totals: {outputs: totals, params: {min_total: 10}}
```

`params`, `log` and `pipe` are Normandy's: the entry's params, a logger, and the run
around the process (`pipe.confs`, the env's settings: only the processes that read or
write the env's files take it). Each is registered under the name `{pkg}.<function>` by
one line of `setup.cfg`:

```ini
[options.entry_points]
normandy.processes =
    {pkg}.extract_orders = {pkg}.processes:extract_orders
```

Normandy reads that list from `setup.cfg` whenever it runs this project, installed or
not: add a function, add its line, use its name in `pipeline/pipeline_conf.yml`.
`normandy validate` checks that every input is output by an earlier step;
`normandy list` shows what is registered and where from.

## Tests

`tests/test_processes.py` uses the fixtures of Normandy's pytest plugin, installed with
Normandy: `run_process("{pkg}.transform_totals", inputs={"orders": rows})` runs one
process as a run of this project would (its entry's params and outputs, its env's
settings, its log captured) and gives back its `outputs`, `messages`, `stdout` and
`error`; `normandy_project().run()` runs a copy of the project with the real `normandy`
command.

## Sharing the processes

This project is a pip-installable package: `pip install .` (or
`pip install git+https://git.example.com/your-team/{dist}.git`) registers its processes
for every project of that environment — once Normandy 1.x is there, or can be found
(`--find-links wheels/`, your index) — which can then use `{pkg}.extract_orders` & co.
in its own flows without copying code. The `{pkg}.` prefix keeps the names apart from
other packages' processes.

## Credentials

The env `dev` needs none. `prod` reads `conf/prod_credentials.yml`, kept out of git (see
`.gitignore`): create it from `conf/credentials.example.yml` and put the real values in.
Processes read them as `pipe.credentials`; their values are masked (`***`) in every log.
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
# The credentials of an env: copy this file to the one the env names in
# pipeline/pipeline_conf.yml (cp conf/credentials.example.yml conf/prod_credentials.yml),
# then put the real values in. Those copies are kept out of git (.gitignore).
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

# prod's sample: a fresh clone runs in prod too; a deployment sets ORDERS_ROOT
_PROD_ORDERS = """
order_id,customer_id,amount
1,c1,120.0
2,c2,45.5
3,c3,8.0
4,c1,30.0
5,c4,210.0
6,c5,15.0
7,c2,4.5
8,c5,60.0
"""

_PROD_CUSTOMERS = _CUSTOMERS + "c5,Miranda,DE\n"

_FILES = {
    "pipeline/pipeline_conf.yml": _CONF,
    "src/{pkg}/__init__.py": '"""The processes of this Normandy project."""\n',
    "src/{pkg}/processes.py": _PROCESSES,
    "tests/test_processes.py": _TESTS,
    "setup.cfg": _SETUP,
    "pyproject.toml": _PYPROJECT,
    "README.md": _README,
    ".gitignore": _GITIGNORE,
    "conf/credentials.example.yml": _CREDENTIALS,
    # kept out of git (.gitignore): a clone makes its own from the example
    "conf/prod_credentials.yml": _CREDENTIALS.split("\n", 5)[-1],
    "data/dev/raw/orders.csv": _ORDERS,
    "data/dev/raw/customers.csv": _CUSTOMERS,
    "data/prod/raw/orders.csv": _PROD_ORDERS,
    "data/prod/raw/customers.csv": _PROD_CUSTOMERS,
}
