"""Shared fixtures: run the real ``normandy`` command on temporary projects, and a Dask
cluster for the tests of the ``dask`` executor."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def normandy_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "normandy"
    if script.exists():
        return [str(script)]
    found = shutil.which("normandy")
    return [found] if found else [sys.executable, "-m", "normandy_cli"]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


RunNormandy = Callable[..., Result]


@pytest.fixture
def normandy() -> RunNormandy:
    """``normandy(*args, cwd=..., env={...})`` runs the real command in a subprocess."""

    def run(
        *args: str,
        cwd: Path | str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> Result:
        full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
        proc = subprocess.run(
            [*normandy_command(), *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """``make_project(conf_yaml, files={relpath: text})`` writes a project, returns its root."""

    def make(conf: str, files: dict[str, str] | None = None, root: Path | None = None) -> Path:
        root = root or tmp_path / "project"
        (root / "pipeline").mkdir(parents=True, exist_ok=True)
        (root / "pipeline" / "pipeline_conf.yml").write_text(textwrap.dedent(conf).lstrip())
        for rel, text in (files or {}).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip())
        return root

    return make


@pytest.fixture
def original_project(tmp_path: Path) -> Path:
    """A fresh copy of examples/original (normandy 0.3's sample, SPEC appendix A)."""
    dest = tmp_path / "original"
    shutil.copytree(
        EXAMPLES / "original",
        dest,
        ignore=shutil.ignore_patterns(
            "logs", ".normandy", "processed*", "__pycache__", "*.egg-info", "build"
        ),
    )
    return dest


# -- the dask executor ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    """The scheduler of a ``LocalCluster`` shared by the dask runs of one test module: two
    single-threaded worker processes, configured as the cluster ``normandy run --executor
    dask`` starts for itself. Each run connects to it with ``--address`` (as to a team's
    cluster): starting a cluster per run would cost seconds each. Runs never share state
    there: each has its own child processes on every worker."""
    pytest.importorskip("distributed")
    from normandy_core.executors.dask._cluster import local_cluster

    cluster = local_cluster(2)
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close(timeout=30)


@pytest.fixture
def executor_args(request: pytest.FixtureRequest) -> Callable[[str], list[str]]:
    """``executor_args("dask")`` -> ``["--executor", "dask", "--address", <the module's
    cluster>]``; the other executors need only ``--executor X``."""

    def args(executor: str) -> list[str]:
        if executor == "dask":
            return ["--executor", "dask", "--address", request.getfixturevalue("dask_address")]
        return ["--executor", executor]

    return args
