"""Shell completion (SPEC 14): typer's --install-completion / --show-completion, and the
completion of commands, options and the project's tags, flows, envs and process names,
asked of the real command the way the shells ask it (``_NORMANDY_COMPLETE``)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import normandy_command

CONF = """
confs:
  plugins: [marker_plugin]
  processes:
    local.load: marker_procs:load
  envs:
    dev: {}
    prod: {}
    preprod: {}
flows:
  nightly:
    tags: [default, nightly]
    steps:
      extract: [pkg.extract, pkg.extract_more]
      load: [local.load]
  weekly:
    tags: [weekly]
    steps:
      report: [pkg.report]
"""

# importing either module leaves a marker: completion must import neither
MARKER = "import pathlib; pathlib.Path(__file__).with_suffix('.imported').touch()\n"
FILES = {
    "marker_plugin.py": MARKER,
    "marker_procs.py": MARKER + "def load(pipe):\n    pass\n",
}


@pytest.fixture
def project(make_project) -> Path:
    return make_project(CONF, FILES)


@pytest.fixture
def complete(normandy):
    """``complete("normandy run --tags ", cwd=…)`` -> the bash completions, one per item."""

    def ask(line: str, cwd: Path, shell: str = "bash") -> list[str]:
        words = line.split(" ")
        env = {"_NORMANDY_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_ARGS": line}
        if shell == "bash":
            env.update(COMP_WORDS=line, COMP_CWORD=str(len(words) - 1))
        result = normandy(cwd=cwd, env=env)
        assert result.returncode == 0, result.output
        assert result.stderr == ""  # never loud, whatever the project
        return [line for line in result.stdout.splitlines() if line]

    return ask


def test_commands_and_options(complete, tmp_path: Path):
    assert complete("normandy r", tmp_path) == ["run", "runs", "report"]
    assert complete("normandy run --fl", tmp_path) == ["--flow"]
    assert complete("normandy graph --format ", tmp_path) == [
        "text",
        "mermaid",
        "dot",
        "json",
        "html",
    ]


def test_tags_flows_and_envs_of_the_project(complete, project: Path):
    assert complete("normandy run --tags ", project) == ["default", "nightly", "weekly"]
    assert complete("normandy validate -t n", project) == ["nightly"]
    assert complete("normandy graph --flow ", project) == ["nightly", "weekly"]
    assert complete("normandy run --env pr", project) == ["preprod", "prod"]
    # from a subfolder, and from --project given before
    (project / "notebooks").mkdir()
    assert complete("normandy run --flow w", project / "notebooks") == ["weekly"]
    elsewhere = project.parent / "elsewhere"
    elsewhere.mkdir()
    assert complete(f"normandy run --project {project} --env d", elsewhere) == ["dev"]
    assert not list(project.glob("*.imported"))


def test_process_names_without_importing_anything(complete, project: Path):
    names = complete("normandy list ", project)
    assert {"pkg.extract", "pkg.extract_more", "pkg.report", "local.load"} <= set(names)
    assert complete("normandy list pkg.ex", project) == ["pkg.extract", "pkg.extract_more"]
    assert not list(project.glob("*.imported"))


def test_zsh_too(complete, project: Path):
    lines = complete("normandy run --flow ", project, shell="zsh")
    assert any("nightly" in line for line in lines) and any("weekly" in line for line in lines)


@pytest.mark.parametrize(
    "conf", ["confs: [\n", "flows: 3\n", "confs:\n  envs: {dev: }\nflows: {f: {tags: [a]}}\n"]
)
def test_a_broken_project_completes_quietly(complete, make_project, conf: str):
    root = make_project(conf)
    assert complete("normandy run --env ", root) in ([], ["dev"])
    assert complete("normandy r", root) == ["run", "runs", "report"]


def test_outside_a_project(complete, tmp_path: Path):
    assert complete("normandy run --tags ", tmp_path) == []


def test_show_and_install_completion(normandy, tmp_path: Path):
    """As a user types them in bash: typer finds the shell among normandy's parent
    processes (under pytest alone there may be none to find)."""
    help_text = normandy("--help").stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text
    command = " ".join(shlex.quote(part) for part in normandy_command())
    home = tmp_path / "home"
    home.mkdir()

    def in_bash(option: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", f"{command} {option}; exit $?"],
            capture_output=True,
            text=True,
            env={**os.environ, "HOME": str(home)},
            timeout=60,
        )

    shown = in_bash("--show-completion")
    assert shown.returncode == 0, shown.stderr
    assert "_NORMANDY_COMPLETE=complete_bash" in shown.stdout
    assert "complete -o default -F _normandy_completion normandy" in shown.stdout
    installed = in_bash("--install-completion")
    assert installed.returncode == 0, installed.stderr
    assert "bash completion installed in" in installed.stdout
    script = home / ".bash_completions" / "normandy.sh"
    assert "_NORMANDY_COMPLETE=complete_bash" in script.read_text()
    assert str(script) in (home / ".bashrc").read_text()
