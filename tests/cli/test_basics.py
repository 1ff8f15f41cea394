"""``normandy --version``, help, and finding the project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import normandy_core


def _python(code: str, cwd: Path | None = None) -> list[str]:
    """The lines ``code`` prints, run by a new interpreter (what it imports is its own)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_version(normandy):
    result = normandy("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"normandy {normandy_core.__version__}"


def test_help_lists_commands(normandy):
    result = normandy("--help")
    assert result.returncode == 0
    for command in ("run", "validate", "list", "graph", "runs", "report", "create-project"):
        assert command in result.stdout


def test_start_up_imports_neither_the_engine_nor_rich():
    """Loading the application stays light: commands import what they need when they run,
    and rich only when a live view is drawn."""
    code = (
        "import sys, normandy_cli._app\n"
        "normandy_cli._app.app  # every command, built\n"
        "heavy = [m for m in ('rich', 'normandy_core.execution', 'normandy_core.report', "
        "'normandy_cli._progress', 'jinja2', 'starlette', 'uvicorn') if m in sys.modules]\n"
        "print(heavy)"
    )
    assert _python(code) == ["[]"]


def test_validate_does_not_load_the_pool(make_project):
    """Listing the executors to check the one chosen imports neither the local engine's
    pool nor the engine kit: ``validate`` on many processes is mostly start-up."""
    root = make_project(
        "confs: {envs: {dev: {}}, processes: {p: 'mod:p'}}\n"
        "flows: {f: {tags: [default], steps: {s: [p]}}}\n",
        {"mod.py": "def p(params):\n    pass\n"},
    )
    code = (
        "import sys\n"
        "from normandy_cli.app import main\n"
        "try:\n"
        "    main(['validate'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "heavy = ('normandy_core.executors.local._pool', 'normandy_core.executors.kit', 'jinja2')\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    assert _python(code, cwd=root)[-1] == "[]"


def test_a_command_is_run_by_an_application_of_that_command_alone():
    """``normandy run …`` imports and builds the ``run`` command only (the others' modules
    and options cost about 30 ms of its start); its help and its messages are those of
    the whole application. No command, or a misspelled one, gets every command."""
    code = (
        "import sys\n"
        "from typer.main import get_command\n"
        "from typer.testing import CliRunner\n"
        "from normandy_cli._app import COMMANDS, app_for\n"
        "alone = app_for(['run', '--help'])\n"
        "others = [m for m in sys.modules if m.startswith('normandy_cli.commands.')]\n"
        "print(sorted(others), sorted(get_command(alone).commands))\n"
        "whole = app_for(['rn'])\n"
        "print(sorted(get_command(whole).commands) == sorted(COMMANDS))\n"
        "runner = CliRunner()\n"
        "for args in (['run', '--help'], ['run', '--workers', 'x'], ['run', '--nope']):\n"
        "    a, b = runner.invoke(alone, args), runner.invoke(whole, args)\n"
        "    print(a.exit_code == b.exit_code and a.output == b.output, a.exit_code)\n"
    )
    assert _python(code) == [
        "['normandy_cli.commands.run'] ['run']",
        "True",
        "True 0",
        "True 2",
        "True 2",
    ]


def test_version_answers_without_loading_the_command_line_framework():
    code = (
        "import sys\n"
        "from normandy_cli.app import main\n"
        "main(['--version'])\n"
        "print('typer' in sys.modules, 'normandy_cli._app' in sys.modules)"
    )
    assert _python(code) == [f"normandy {normandy_core.__version__}", "False False"]


def test_version_among_other_arguments_is_typers(normandy):
    result = normandy("--version", "run", "--tags", "x")
    assert result.returncode == 0
    assert result.stdout.strip() == f"normandy {normandy_core.__version__}"


def test_unknown_option_is_a_usage_error(normandy):
    result = normandy("run", "--no-such-option")
    assert result.returncode == 2
    assert "No such option" in result.stderr


def test_outside_a_project(normandy, tmp_path: Path):
    result = normandy("validate", cwd=tmp_path)
    assert result.returncode == 2
    assert "no pipeline/pipeline_conf.yml" in result.stderr
    assert "create-project" in result.stderr
    assert "Traceback" not in result.output


def test_project_found_upward(normandy, original_project: Path):
    sub = original_project / "raw_dev"
    result = normandy("validate", cwd=sub)
    assert result.returncode == 0, result.output
    assert "ok" in result.stderr


def test_project_option(normandy, original_project: Path, tmp_path: Path):
    result = normandy("validate", "--project", str(original_project), cwd=tmp_path)
    assert result.returncode == 0, result.output


def test_a_folder_it_cannot_write_is_a_clear_error(normandy, original_project: Path):
    (original_project / "logs").write_text("not a folder")
    result = normandy("run", cwd=original_project)
    assert result.returncode == 2
    assert "normandy: error: Not a directory" in result.stderr
    assert "check that the project's folders can be written" in result.stderr
    assert "Traceback" not in result.output
