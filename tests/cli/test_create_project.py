"""``normandy create-project``: a project that runs at once and installs as a package."""

from __future__ import annotations

import site
import sqlite3
import subprocess
import sys
import venv
from pathlib import Path


def test_create_then_run(normandy, tmp_path: Path):
    result = normandy("create-project", "shop-pipelines", cwd=tmp_path)
    assert result.returncode == 0, result.output
    root = tmp_path / "shop-pipelines"
    assert (root / "src" / "shop_pipelines" / "processes.py").is_file()
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
    assert normandy("validate", "--env", "prod", cwd=root).returncode == 0


def test_the_created_tests_pass(normandy, tmp_path: Path):
    normandy("create-project", "p", cwd=tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path / "p",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


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


def test_installed_into_a_venv_runs_through_its_entry_points(normandy, tmp_path: Path):
    assert normandy("create-project", "shared", cwd=tmp_path).returncode == 0
    root = tmp_path / "shared"
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _see_this_interpreters_packages(python)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(root)],
        check=True,
    )
    # without confs.plugins and without its source folder, only the entry points remain
    conf = root / "pipeline" / "pipeline_conf.yml"
    conf.write_text(conf.read_text().replace("  plugins: [shared.plugin]\n", ""))
    (root / "src").rename(root / "src-moved")
    listed = subprocess.run(
        [str(python), "-m", "normandy_cli", "list"], cwd=root, capture_output=True, text=True
    )
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert ["extract_orders", "shared", "shared.processes:extract_orders", "orders"] in rows
    result = subprocess.run(
        [str(python), "-m", "normandy_cli", "run"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root / "data" / "dev" / "out" / "report.csv").is_file()


def _see_this_interpreters_packages(python: Path) -> None:
    """Let a new venv import what the test's interpreter has (Normandy, setuptools, wheel),
    whether that interpreter is itself a venv or the system's: ``system_site_packages`` only
    reaches the base installation. ``addsitedir`` also runs their ``.pth`` files, which hold
    the editable install of Normandy."""
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    dirs = [d for d in site.getsitepackages() if Path(d).is_dir()]
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in dirs)
    (Path(purelib) / "_outer_site.pth").write_text(lines)


def test_a_place_it_cannot_write_is_a_clear_error(normandy, tmp_path: Path):
    (tmp_path / "a-file").write_text("")
    result = normandy("create-project", "a-file/p", cwd=tmp_path)
    assert result.returncode == 2
    assert "normandy: error: cannot write a-file/p/" in result.stderr
    assert "choose a folder you can write to" in result.stderr
    assert "Traceback" not in result.output
