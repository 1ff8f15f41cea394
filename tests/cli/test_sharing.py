"""Sharing processes across repositories, for real (SPEC 10, 14).

A fresh virtual environment, made here, gets Normandy (a wheel of this worktree, its
dependencies from the package index) and, by a plain ``pip install`` (built, not
editable, with their dependencies), three process packages side by side:

- A, ``acme-pipes``, written by hand as a team publishes processes: ``acme.count_rows``
  and the short name ``write_report``;
- B and C, two projects made by ``create-project``, whose processes have the same default
  names (``extract_orders``…), registered as ``b_pipes.extract_orders`` and
  ``c_pipes.extract_orders``; B's team also exposes ``upload_report`` under the short
  name ``write_report`` — which clashes with A's.

A third repository, D (no package, a ``pipeline_conf.yml`` and data), uses A's and C's
processes by name and ``write_report``: the clash stops D until D chooses A's target in
``confs.processes``, and never stops B or C, whose flows do not use that name.

The environment is built once for the module (about a minute): every test reads it, and
the clone test, which installs the clone as its README says, leaves it equivalent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import normandy_core
from tests.conftest import REPO, Result

PIP_TIMEOUT = 900  # downloads from the package index on a slow day


@dataclass
class Environment:
    """The scenario's virtual environment and its repositories."""

    venv: Path
    wheel: Path
    repos: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self) -> dict[str, str]:
        path = f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        return {**env, "PATH": path, "VIRTUAL_ENV": str(self.venv), "NO_COLOR": "1"}

    def run(self, args: list[str], cwd: Path, timeout: float = 300) -> Result:
        proc = subprocess.run(
            args,
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def normandy(self, *args: str, cwd: Path) -> Result:
        return self.run([str(self.bin / "normandy"), *args], cwd)

    def pip(self, *args: str, cwd: Path | None = None) -> Result:
        return self.run(
            [str(self.bin / "python"), "-m", "pip", *args], cwd or self.repos, PIP_TIMEOUT
        )


def _ok(result: Result) -> Result:
    assert result.returncode == 0, result.output
    return result


# -- the packages ---------------------------------------------------------------------------

ACME_SETUP = """
[metadata]
name = acme-pipes
version = 2.1.0

[options]
packages = acme_pipes
install_requires =
    normandy>=1.0,<2

[options.entry_points]
normandy.processes =
    acme.count_rows = acme_pipes.rows:count_rows
    write_report = acme_pipes.report:write_report
"""

ACME_ROWS = '''
import csv


def count_rows(pipe, log, params):
    """Count the data rows of the CSV file params["file"] (relative to the project)."""
    with (pipe.path / params["file"]).open(newline="") as handle:
        count = sum(1 for _ in csv.DictReader(handle))
    pipe.vars["row_count"] = count
    log.info("%s: %d rows", params["file"], count)
'''

ACME_REPORT = '''
def write_report(pipe, params):
    """Write what the flow counted and totalled to <project>/<params["out"]>/summary.txt."""
    out = pipe.path / params["out"]
    out.mkdir(parents=True, exist_ok=True)
    totals = pipe.vars.get("totals", {})
    lines = [f"rows: {pipe.vars['row_count']}"]
    lines += [f"{customer}: {total}" for customer, total in sorted(totals.items())]
    (out / "summary.txt").write_text("\\n".join(lines) + "\\n")
'''

PYPROJECT = (
    '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
)

D_CONF = """
confs:
  workers: 2
  envs:
    dev:
      read: data
      write: out
flows:
  orders:
    tags: [default]
    params: {currency: EUR}
    steps:
      count:
        - acme.count_rows: {params: {file: data/orders.csv}}
        - c_pipes.extract_orders: {outputs: orders}
        - c_pipes.extract_customers: {outputs: customers}
      transform:
        c_pipes.transform_totals: {outputs: totals, params: {min_total: 20}}
      report:
        write_report: {params: {out: out}}
"""

D_ORDERS = "order_id,customer_id,amount\n1,k1,25.0\n2,k2,5.0\n3,k1,10.0\n4,k3,40.0\n"
D_CUSTOMERS = "customer_id,name,country\nk1,Shepard,UK\nk2,Joker,US\nk3,Mordin,SA\n"


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def _build_normandy(dest: Path) -> Path:
    """A wheel of this worktree, built from a copy of what the distribution holds (the
    build's own files stay out of the worktree)."""
    source = dest / "source"
    for name in ("normandy_core", "normandy_cli"):
        shutil.copytree(
            REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    wheels = dest / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
        timeout=PIP_TIMEOUT,
    )
    [wheel] = wheels.glob("normandy-*.whl")
    return wheel


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Tester", "-c", "user.email=tester@example.com",
         "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    """The environment with A, B and C installed side by side, and the repositories."""
    base = tmp_path_factory.mktemp("sharing")
    wheel = _build_normandy(base)
    venv.create(base / "venv", with_pip=True)
    env = Environment(base / "venv", wheel, base / "repos")
    env.repos.mkdir()
    _ok(env.pip("install", "-q", str(wheel)))
    _write(
        env.repos / "acme-pipes",
        {
            "setup.cfg": ACME_SETUP,
            "pyproject.toml": PYPROJECT,
            "acme_pipes/__init__.py": "",
            "acme_pipes/rows.py": ACME_ROWS,
            "acme_pipes/report.py": ACME_REPORT,
        },
    )
    for name in ("b-pipes", "c-pipes"):
        _ok(env.normandy("create-project", name, cwd=env.repos))
    setup = env.repos / "b-pipes" / "setup.cfg"
    setup.write_text(
        setup.read_text().replace(
            "normandy.processes =\n",
            "normandy.processes =\n    write_report = b_pipes.processes:upload_report\n",
        )
    )
    _ok(env.pip("install", "-q", "./acme-pipes", "./b-pipes", "./c-pipes"))
    _write(
        env.repos / "d-reports",
        {
            "pipeline/pipeline_conf.yml": D_CONF,
            "data/orders.csv": D_ORDERS,
            "data/customers.csv": D_CUSTOMERS,
        },
    )
    yield env


# -- installed side by side -----------------------------------------------------------------


def test_installed_side_by_side_with_this_normandy(world: Environment):
    assert _ok(world.normandy("--version", cwd=world.repos)).stdout.strip() == (
        f"normandy {normandy_core.__version__}"
    )
    installed = json.loads(_ok(world.pip("list", "--format", "json")).stdout)
    versions = {row["name"]: row["version"] for row in installed}
    assert versions["normandy"] == normandy_core.__version__  # never 0.3 from the index
    assert {"acme-pipes", "b-pipes", "c-pipes"} <= versions.keys()
    for dist in ("acme-pipes", "b-pipes", "c-pipes"):  # built and installed, not editable
        shown = _ok(world.pip("show", "-f", dist)).stdout
        assert "Editable project location" not in shown
    listed = world.normandy("list", "--json", cwd=world.repos / "d-reports")
    assert listed.returncode == 0, listed.output
    rows = json.loads(listed.stdout)
    names = {(r["name"], r["source"]) for r in rows}
    for package in ("b_pipes", "c_pipes"):  # the same default names, apart by their prefix
        assert (f"{package}.extract_orders", package.replace("_", "-")) in names
    assert [(r["source"], r["clash"]) for r in rows if r["name"] == "write_report"] == [
        ("acme-pipes", True),
        ("b-pipes", True),
    ]
    assert [r["name"] for r in rows if r["clash"]] == ["write_report", "write_report"]
    warning = listed.stderr.strip()
    assert warning.startswith("normandy: warning: process 'write_report' is registered with 2")
    assert warning.endswith("(used by orders)")


@pytest.mark.parametrize("name", ["b-pipes", "c-pipes"])
def test_scaffolded_projects_validate_and_run(world: Environment, name: str):
    root = world.repos / name
    _ok(world.normandy("validate", cwd=root))
    run = _ok(world.normandy("run", cwd=root))
    assert "6 tasks" in run.stderr and "succeeded" in run.stderr
    assert (root / "data" / "dev" / "out" / "report.csv").read_text().startswith("customer,")
    # its installed copy and its own setup.cfg are one source: one row per process
    rows = json.loads(_ok(world.normandy("list", "--json", cwd=root)).stdout)
    own = [r for r in rows if r["name"].startswith(name.replace("-", "_") + ".")]
    assert len(own) == 6
    assert {(r["source"], r["kind"], r["clash"]) for r in own} == {
        (name, "project package", False)
    }


def test_a_repository_uses_installed_processes_by_name(world: Environment):
    root = world.repos / "d-reports"
    conf = root / "pipeline" / "pipeline_conf.yml"
    for command in (["validate"], ["run", "--dry-run"], ["graph"], ["run"]):
        stopped = world.normandy(*command, cwd=root)
        assert stopped.returncode == 2, (command, stopped.output)
        [problem] = [line for line in stopped.stderr.splitlines() if "write_report" in line]
        assert problem == (
            "pipeline/pipeline_conf.yml:19:9: flows.orders.steps.report.write_report: process "
            "'write_report' is registered with 2 different targets: acme_pipes.report:"
            "write_report (from acme-pipes); b_pipes.processes:upload_report (from b-pipes); "
            "choose one in confs.processes of pipeline_conf.yml (write_report: "
            '"acme_pipes.report:write_report"), or uninstall acme-pipes or b-pipes '
            "(pip uninstall NAME)"
        )
    conf.write_text(
        conf.read_text().replace(
            "  workers: 2\n",
            "  workers: 2\n  processes:\n    write_report: acme_pipes.report:write_report\n",
        )
    )
    try:
        _ok(world.normandy("validate", cwd=root))
        listed = json.loads(_ok(world.normandy("list", "write_report", "--json", cwd=root)).stdout)
        assert [(r["source"], r["target"]) for r in listed] == [
            ("project", "acme_pipes.report:write_report")
        ]
        run = _ok(world.normandy("run", cwd=root))
        assert "5 tasks" in run.stderr
        assert (root / "out" / "summary.txt").read_text().splitlines() == [
            "rows: 4",
            "k1: 35.0",
            "k3: 40.0",
        ]
    finally:
        conf.write_text(D_CONF.lstrip("\n"))


def test_the_scaffolds_requirement_refuses_normandy_0x(world: Environment):
    setup = (world.repos / "c-pipes" / "setup.cfg").read_text()
    [line] = [ln.strip() for ln in setup.splitlines() if ln.strip().startswith("normandy>")]
    requirement = Requirement(line)
    assert requirement.name == "normandy"
    assert not any(requirement.specifier.contains(v) for v in ("0.2", "0.3", "0.99", "2.0"))
    assert requirement.specifier.contains(normandy_core.__version__)
    # resolved afresh from the package index alone (not the Normandy installed here): the
    # index's normandy is the 0.x of 2021, which pip must refuse rather than install
    report = world.repos / "report.json"
    resolved = world.pip(
        "install", "--dry-run", "--ignore-installed", "--report", str(report), "./c-pipes"
    )
    if resolved.returncode == 0:  # some day, a 1.x on the index: then that one
        chosen = {
            item["metadata"]["name"]: item["metadata"]["version"]
            for item in json.loads(report.read_text())["install"]
        }
        assert Version(chosen["normandy"]).major == 1, chosen
    else:
        assert re.search(
            r"No matching distribution found for normandy<2,>=1\.0|"
            r"requirement normandy<2,>=1\.0 .*from versions: [^)]*0\.3",
            resolved.stderr,
        ), resolved.stderr


def test_a_clone_of_a_scaffold_runs_in_dev_and_prod(world: Environment):
    origin = world.repos / "c-pipes"
    _git("init", "-q", cwd=origin)
    _git("add", ".", cwd=origin)
    _git("commit", "-q", "-m", "A new project", cwd=origin)
    clone = world.repos / "c-pipes-clone"
    _git("clone", "-q", str(origin), str(clone), cwd=world.repos)
    assert not (clone / "conf" / "prod_credentials.yml").exists()  # kept out of git
    assert not (clone / "data" / "dev" / "out").exists()
    stopped = world.normandy("run", "--env", "prod", cwd=clone)
    assert stopped.returncode == 2
    assert (
        "create it from conf/credentials.example.yml (credentials files are kept out of git): "
        "cp conf/credentials.example.yml conf/prod_credentials.yml"
    ) in stopped.stderr
    # every command of its README, in order, as a newcomer types them
    readme = (clone / "README.md").read_text()
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    commands = [c for c in commands if c]
    assert "normandy run --env prod" in commands and "normandy run" in commands
    for command in commands:
        result = world.run(["bash", "-c", command], clone, timeout=PIP_TIMEOUT)
        assert result.returncode == 0, (command, result.output)
    for env in ("dev", "prod"):
        report = clone / "data" / env / "out" / "report.csv"
        assert report.read_text().startswith("customer,country,total_eur\n"), env
