"""The processes a project declares in its own setup.cfg or pyproject.toml (SPEC 14)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from normandy_core.package_file import normalize_dist_name, read_declared_processes


def write(root: Path, name: str, text: str) -> None:
    (root / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def test_setup_cfg(project_dir: Path) -> None:
    write(
        project_dir,
        "setup.cfg",
        """
        [metadata]
        name = my-pipes
        version = 0.1.0

        [options]
        install_requires =
            # a comment, and 100% a percent sign
            normandy>=1.0,<2

        [options.entry_points]
        console_scripts =
            tool = my_pipes.cli:main
        normandy.processes =
            # the processes
            my_pipes.extract = my_pipes.processes:extract
            my_pipes.load=my_pipes.processes : load [sql]
        """,
    )
    declared, problems = read_declared_processes(project_dir)
    assert problems == []
    assert declared is not None
    assert declared.dist == declared.source == "my-pipes"
    assert declared.file == project_dir / "setup.cfg"
    assert dict(declared.processes) == {
        "my_pipes.extract": "my_pipes.processes:extract",
        "my_pipes.load": "my_pipes.processes:load",
    }


def test_pyproject_toml(project_dir: Path) -> None:
    write(
        project_dir,
        "pyproject.toml",
        """
        [project]
        name = "My_Pipes"
        version = "1.0"

        [project.entry-points."normandy.processes"]
        "pipes.extract" = "my_pipes.processes:extract"
        """,
    )
    declared, problems = read_declared_processes(project_dir)
    assert problems == []
    assert declared is not None
    assert (declared.dist, dict(declared.processes)) == (
        "My_Pipes",
        {"pipes.extract": "my_pipes.processes:extract"},
    )


def test_nothing_declared(project_dir: Path) -> None:
    assert read_declared_processes(project_dir) == (None, [])
    write(project_dir, "setup.cfg", "[metadata]\nname = x\n")
    write(project_dir, "pyproject.toml", '[build-system]\nrequires = ["setuptools"]\n')
    assert read_declared_processes(project_dir) == (None, [])


def test_a_file_without_a_name_is_named_by_its_path(project_dir: Path) -> None:
    write(
        project_dir,
        "setup.cfg",
        "[options.entry_points]\nnormandy.processes =\n    p = m:f\n",
    )
    declared, _ = read_declared_processes(project_dir)
    assert declared is not None
    assert (declared.dist, declared.source) == (None, "setup.cfg")


def test_bad_entries_are_positioned_problems(project_dir: Path) -> None:
    write(
        project_dir,
        "setup.cfg",
        """
        [metadata]
        name = my-pipes

        [options.entry_points]
        normandy.processes =
            good = my_pipes.processes:good
            no target here
            bad name! = my_pipes.processes:x
            dotted = my_pipes.processes.x
        """,
    )
    declared, problems = read_declared_processes(project_dir)
    assert declared is not None and dict(declared.processes) == {
        "good": "my_pipes.processes:good"
    }
    assert [str(p) for p in problems] == [
        "setup.cfg:7:1: options.entry_points.normandy.processes: 'no target here' is not an "
        "entry point: write 'name = package.module:function'",
        "setup.cfg:8:1: normandy.processes.bad name!: invalid process name 'bad name!': "
        "names match [A-Za-z_][A-Za-z0-9_.-]*",
        "setup.cfg:9:1: normandy.processes.dotted: target 'my_pipes.processes.x' of process "
        "'dotted' must look like 'package.module:function'",
    ]


def test_unreadable_files_are_problems_not_tracebacks(project_dir: Path) -> None:
    write(project_dir, "setup.cfg", "normandy.processes = x\n[metadata]\n")
    write(project_dir, "pyproject.toml", '[project.entry-points."normandy.processes"]\np = \n')
    declared, problems = read_declared_processes(project_dir)
    assert declared is None
    assert [(p.file, p.line) for p in problems] == [("pyproject.toml", 2), ("setup.cfg", 1)]
    assert problems[0].message.startswith("cannot read normandy.processes: Invalid value")
    assert problems[1].message.startswith("cannot read normandy.processes: File contains no")


def test_files_that_do_not_mention_the_group_are_not_parsed(project_dir: Path) -> None:
    write(project_dir, "pyproject.toml", "[project]\nname = 'x'\n")
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from normandy_core.package_file import read_declared_processes\n"
        f"print(read_declared_processes(Path({str(project_dir)!r})), 'tomllib' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["(None,", "[])", "False"], result.stderr


def test_normalize_dist_name() -> None:
    assert normalize_dist_name("My_Pipes") == normalize_dist_name("my.pipes") == "my-pipes"
    assert normalize_dist_name("a--b__c") == "a-b-c"
