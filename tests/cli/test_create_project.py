"""``normandy create-project``: a project that runs at once and installs as a package."""

from __future__ import annotations

import configparser
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

PROCESSES = [
    "extract_orders",
    "extract_customers",
    "transform_totals",
    "transform_countries",
    "upload_report",
    "upload_database",
]


def test_create_then_run(normandy, tmp_path: Path):
    result = normandy("create-project", "shop-pipelines", cwd=tmp_path)
    assert result.returncode == 0, result.output
    root = tmp_path / "shop-pipelines"
    processes = (root / "src" / "shop_pipelines" / "processes.py").read_text()
    # it teaches what the README does: inputs by parameter, return values with outputs:
    # (a process it added that reads `totals` was refused: totals went through pipe.vars)
    assert "pipe.vars" not in processes and "return kept" in processes
    conf = (root / "pipeline" / "pipeline_conf.yml").read_text()
    assert "shop_pipelines.transform_totals: {outputs: totals, params: {min_total: 10}}" in conf
    readme = (root / "README.md").read_text()
    assert "## Installing Normandy 1.x" in readme and "--find-links" in readme
    assert ".normandy/" in (root / ".gitignore").read_text()
    assert "conf/*_credentials.yml" in (root / ".gitignore").read_text()
    run = normandy("run", cwd=root)
    assert run.returncode == 0, run.output
    assert "Liara" in run.stderr  # the report is printed
    report = (root / "data" / "dev" / "out" / "report.csv").read_text().splitlines()
    assert report == [
        "customer,country,total_eur",
        "Liara,FR,70.5",
        "Garrus,NO,12.0",
        "Tali,PT,99.9",
    ]
    with sqlite3.connect(root / "data" / "dev" / "out" / "orders.sqlite") as db:
        assert db.execute("SELECT country, orders FROM orders_by_country").fetchall() == [
            ("FR", 3),
            ("NO", 2),
            ("PT", 1),
        ]
    prod = normandy("run", "--env", "prod", cwd=root)
    assert prod.returncode == 0, prod.output
    report = (root / "data" / "prod" / "out" / "report.csv").read_text().splitlines()
    assert report[1:] == ["Liara,FR,150.0", "Garrus,NO,50.0", "Wrex,NO,210.0", "Miranda,DE,75.0"]


def test_one_registration_list_with_the_packages_prefix(normandy, tmp_path: Path):
    """The processes are named <package>.<name>, registered once: by the entry points of
    setup.cfg, which Normandy reads whether the project is installed or not."""
    assert normandy("create-project", "shop-pipelines", cwd=tmp_path).returncode == 0
    root = tmp_path / "shop-pipelines"
    names = [f"shop_pipelines.{p}" for p in PROCESSES]
    setup = configparser.ConfigParser()
    setup.read(root / "setup.cfg")
    entries = setup["options.entry_points"]["normandy.processes"].split("\n")
    assert [e for e in entries if e] == [
        f"shop_pipelines.{p} = shop_pipelines.processes:{p}" for p in PROCESSES
    ]
    assert not (root / "src" / "shop_pipelines" / "plugin.py").exists()
    conf = (root / "pipeline" / "pipeline_conf.yml").read_text()
    assert "plugins" not in conf
    assert all(name in conf for name in names)
    listed = normandy("list", "--json", cwd=root)
    assert listed.returncode == 0, listed.output
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    for name, process in zip(names, PROCESSES):
        assert rows[name]["target"] == f"shop_pipelines.processes:{process}"
        assert (rows[name]["source"], rows[name]["kind"]) == ("shop-pipelines", "project package")
        assert rows[name]["flows"] == ["orders"]


def test_it_requires_a_normandy_that_excludes_the_0x_releases(normandy, tmp_path: Path):
    import normandy_core

    assert normandy("create-project", "p", cwd=tmp_path).returncode == 0
    setup = configparser.ConfigParser()
    setup.read(tmp_path / "p" / "setup.cfg")
    lines = setup["options"]["install_requires"].split("\n")
    [requirement] = [Requirement(line) for line in lines if line and not line.startswith("#")]
    assert requirement.name == "normandy"
    # 0.3 is the 2021 release on PyPI: another program; this one satisfies it
    assert not any(requirement.specifier.contains(v) for v in ("0.3", "0.2.3", "0.9", "2.0"))
    assert requirement.specifier.contains(normandy_core.__version__)


def test_missing_credentials_name_the_example_and_the_command(normandy, tmp_path: Path):
    """Credentials are kept out of git: in a clone, the message says how to make them."""
    assert normandy("create-project", "p", cwd=tmp_path).returncode == 0
    root = tmp_path / "p"
    (root / "conf" / "prod_credentials.yml").unlink()  # as in a fresh clone
    assert normandy("run", cwd=root).returncode == 0  # dev needs no credentials
    result = normandy("run", "--env", "prod", cwd=root)
    assert result.returncode == 2
    command = "cp conf/credentials.example.yml conf/prod_credentials.yml"
    assert (
        "confs.envs.prod.credentials: credentials file conf/prod_credentials.yml does not "
        "exist; create it from conf/credentials.example.yml (credentials files are kept out "
        f"of git): {command} — then put the real values in"
    ) in result.stderr
    subprocess.run(command.split(), cwd=root, check=True)
    result = normandy("run", "--env", "prod", cwd=root)
    assert result.returncode == 0, result.output


def test_the_created_tests_pass(normandy, tmp_path: Path):
    normandy("create-project", "p", cwd=tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path / "p",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout  # with the fixtures of Normandy's pytest plugin


def test_refuses_to_overwrite_without_force(normandy, tmp_path: Path):
    assert normandy("create-project", "p", cwd=tmp_path).returncode == 0
    conf = tmp_path / "p" / "pipeline" / "pipeline_conf.yml"
    conf.write_text(conf.read_text() + "# mine\n")
    result = normandy("create-project", "p", cwd=tmp_path)
    assert result.returncode == 2
    assert "already holds pipeline/pipeline_conf.yml" in result.stderr
    assert "--force" in result.stderr
    assert conf.read_text().endswith("# mine\n")
    assert normandy("create-project", "p", "--force", cwd=tmp_path).returncode == 0
    assert not conf.read_text().endswith("# mine\n")


def test_original_command_line(normandy, tmp_path: Path):
    result = normandy("--create-project", "-project-path", "old-style", cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert "deprecated" in result.stderr
    assert "normandy create-project old-style" in result.stderr
    assert (tmp_path / "old-style" / "pipeline" / "pipeline_conf.yml").is_file()


def test_a_place_it_cannot_write_is_a_clear_error(normandy, tmp_path: Path):
    (tmp_path / "a-file").write_text("")
    result = normandy("create-project", "a-file/p", cwd=tmp_path)
    assert result.returncode == 2
    assert "normandy: error: cannot write a-file/p/" in result.stderr
    assert "choose a folder you can write to" in result.stderr
    assert "Traceback" not in result.output
