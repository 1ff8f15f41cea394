"""Installing Normandy 1.x as the README and docs/tutorial/sharing.md say a team does, in
a fresh virtualenv: `pip install ./team-a` there failed (`No matching distribution found
for normandy<2,>=1.0`: PyPI's `normandy` is the 2021 program), and the README's "your own
project in a minute" called pytest before anything installed it.

One test, slow (a virtualenv, the dependencies installed into it): a wheel of Normandy
built from this repository, a project made by `create-project` installed with
`--find-links`, then the README's block run in that environment as written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from normandy_core import __version__
from normandy_core.testing._project import normandy_command

REPO = Path(__file__).resolve().parents[2]

_LEFT_OUT = shutil.ignore_patterns(
    ".git", ".tox", ".venv*", "*.egg-info", "build", "dist", "site", "__pycache__",
    "tests", "docs", "examples", "plugins", "benchmarks", "logs", ".normandy",
)  # fmt: skip


def readme_block(section: str) -> str:
    """The first bash block of the README's section ``section``."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    found = re.compile(r"```bash\n(.*?)```", re.S).search(text, start)
    assert found is not None, section
    return found.group(1)


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600, **kwargs
    )  # type: ignore[call-overload]
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_a_team_installs_normandy_from_a_wheel_and_the_readme_works(tmp_path: Path) -> None:
    # a wheel, built from a copy of the repository (the build writes beside its sources)
    source = tmp_path / "normandy"
    shutil.copytree(REPO, source, ignore=_LEFT_OUT)
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-q", "-w", str(wheels), str(source)])  # fmt: skip
    [wheel] = wheels.glob("normandy-*.whl")
    assert wheel.name.startswith(f"normandy-{__version__}-")

    # a team's project, installed in a fresh virtualenv: Normandy 1.x from the wheels
    run([*normandy_command(), "create-project", "team-a"], cwd=tmp_path)
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    bin_dir = venv / "bin"
    # its pip is this one, installing into it (ensurepip would take most of the test's time)
    pip = bin_dir / "pip"
    pip.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -m pip --python "{bin_dir / "python"}" "$@"\n'
    )
    pip.chmod(0o755)
    run([str(pip), "install", "-q", "--find-links", str(wheels), str(tmp_path / "team-a")])
    assert not (bin_dir / "pytest").exists()  # as after the README's first command

    # the README's own project, in that environment, as written (`cd ~`: a home of its own)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
        "HOME": str(home),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_COLOR": "1",
    }
    block = readme_block("Your own project in a minute")
    done = run(["bash", "-ec", block], cwd=tmp_path, env=env)
    assert re.search(r"\b6 passed\b", done.stdout), done.stdout[-2000:]
    project = home / "my-pipelines"
    assert (project / "data" / "dev" / "out" / "report.csv").is_file()

    # the wheel's Normandy runs them, and the installed team-a's processes are shared
    version = run([str(bin_dir / "normandy"), "--version"], env=env)
    assert version.stdout.strip() == f"normandy {__version__}"
    listed = json.loads(run([str(bin_dir / "normandy"), "list", "--json"], cwd=project,
                            env=env).stdout)  # fmt: skip
    shared = {r["name"]: (r["source"], r["kind"]) for r in listed}
    assert shared["team_a.extract_orders"] == ("team-a", "entry point")
    assert shared["my_pipelines.extract_orders"][0] == "my-pipelines"
