"""Fixtures for normandy-io: a real ``Pipe`` over temporary folders for the unit tests, and
the real ``normandy`` command for the end-to-end ones."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from normandy_core.pipe import Pipe
from normandy_core.store import Variables
from normandy_core.testing._project import normandy_command  # the plugin's, shared

PLUGIN = Path(__file__).resolve().parents[1]
# the unit tests import the source tree, installed or not (the end-to-end ones install it)
sys.path.insert(0, str(PLUGIN))

MakePipe = Callable[..., Pipe]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


@pytest.fixture
def make_pipe(project: Path, tmp_path: Path) -> MakePipe:
    """``make_pipe(params, confs=..., credentials=..., process=...)``: a Pipe as a worker
    builds it, with a real variables storage committed by earlier steps under ``state``."""

    def make(
        params: dict[str, Any] | None = None,
        *,
        confs: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        process: str = "io.test",
    ) -> Pipe:
        state = tmp_path / "state"
        return Pipe(
            env="dev",
            confs=confs or {},
            credentials=credentials or {},
            path=project,
            vars=Variables(state / "vars" / "f", state / "staging" / "f" / process),
            params=dict(params or {}),
            run_id="20240101T000000-test",
            flow="f",
            step="s",
            process=process,
            task=process,
        )

    return make


@pytest.fixture
def log() -> logging.Logger:
    """A real logger that propagates, so that ``caplog`` sees its records."""
    logger = logging.getLogger("normandy_io.tests")
    logger.setLevel(logging.DEBUG)
    logger.propagate = True
    return logger


@pytest.fixture
def alive() -> Callable[[int], bool]:
    """``alive(pid)``: whether a process runs (a zombie, whose parent never reaps it, does
    not)."""
    return _pid_alive


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """normandy-io pip-installed (entry points and all) into its own folder, from a copy of
    its source so that the build leaves no ``build/`` nor ``*.egg-info`` in the tree."""
    root = tmp_path_factory.mktemp("normandy-io")
    source = root / "normandy-io"
    shutil.copytree(
        PLUGIN,
        source,
        ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"),
    )
    target = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
    )
    return target


@pytest.fixture
def normandy(site: Path) -> Callable[..., Result]:
    """``normandy(*args, cwd=...)`` runs the real command with the installed package on
    ``PYTHONPATH``."""

    def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Result:
        full_env = {
            **os.environ,
            "NO_COLOR": "1",
            "COLUMNS": "200",
            "PYTHONPATH": str(site),
            **(env or {}),
        }
        proc = subprocess.run(
            [*normandy_command(), *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def write_project(project: Path) -> Callable[..., Path]:
    """``write_project(conf_yaml, files={relpath: text})`` writes a project, returns its root."""

    def write(conf: str, files: dict[str, str] | None = None) -> Path:
        (project / "pipeline").mkdir(exist_ok=True)
        (project / "pipeline" / "pipeline_conf.yml").write_text(textwrap.dedent(conf).lstrip())
        for rel, text in (files or {}).items():
            path = project / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip())
        return project

    return write
