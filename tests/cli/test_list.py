"""``normandy list``, and processes registered by a real pip-installed package."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CONF = """
confs:
  envs: {dev: {}}
flows:
  nightly:
    tags: [default]
    steps:
      extract: [pkg_extract]
      load: [pkg_load, hooked]
"""


def _write_package(root: Path) -> Path:
    """A real distribution: processes through entry points and a pluggy plugin; its modules
    leave a marker file when imported, so a test can tell whether a command imported them."""
    pkg = root / "acme-processes"
    (pkg / "acme_processes").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    (pkg / "setup.cfg").write_text(
        textwrap.dedent("""
        [metadata]
        name = acme-processes
        version = 1.2.0

        [options]
        packages = acme_processes

        [options.entry_points]
        normandy.processes =
            pkg_extract = acme_processes.extract:run
            pkg_load = acme_processes.load:run
        normandy.plugins =
            acme = acme_processes.plugin
    """)
    )
    marker = textwrap.dedent("""
        import os, pathlib
        pathlib.Path(os.environ["ACME_MARKERS"], __name__).touch()
    """)
    (pkg / "acme_processes" / "__init__.py").write_text("")
    (pkg / "acme_processes" / "extract.py").write_text(marker + "def run(pipe, log):\n    pass\n")
    (pkg / "acme_processes" / "load.py").write_text(marker + "def run(params):\n    pass\n")
    (pkg / "acme_processes" / "plugin.py").write_text(
        textwrap.dedent("""
        from normandy_core import hookimpl

        @hookimpl
        def normandy_processes():
            return {"hooked": "acme_processes.load:run"}
    """)
    )
    return pkg


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """pip-install the package into its own folder; tests put it on PYTHONPATH."""
    root = tmp_path_factory.mktemp("acme")
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
            str(_write_package(root)),
        ],
        check=True,
    )
    return target


def _env(installed: Path, markers: Path) -> dict[str, str]:
    markers.mkdir(exist_ok=True)
    return {"PYTHONPATH": str(installed), "ACME_MARKERS": str(markers)}


def test_list_without_importing_entry_points(normandy, make_project, installed, tmp_path):
    root = make_project(CONF)
    markers = tmp_path / "markers"
    result = normandy("list", cwd=root, env=_env(installed, markers))
    assert result.returncode == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:]}
    assert lines["pkg_extract"][1:] == ["acme-processes", "acme_processes.extract:run", "nightly"]
    assert lines["hooked"][1:] == ["acme-processes", "acme_processes.load:run", "nightly"]
    # the plugin module is imported to call its hook; process modules are not
    assert sorted(p.name for p in markers.iterdir()) == []


def test_list_json(normandy, make_project, installed, tmp_path):
    root = make_project(CONF)
    result = normandy("list", "--json", cwd=root, env=_env(installed, tmp_path / "m"))
    assert result.returncode == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["pkg_load"] == {
        "name": "pkg_load",
        "source": "acme-processes",
        "kind": "entry point",
        "target": "acme_processes.load:run",
        "flows": ["nightly"],
        "clash": False,
    }
    assert rows["hooked"]["kind"] == "plugin"


def test_validate_imports_only_what_the_flows_use(normandy, make_project, installed, tmp_path):
    root = make_project(CONF.replace("load: [pkg_load, hooked]", "load: [pkg_load]"))
    markers = tmp_path / "markers"
    result = normandy("validate", cwd=root, env=_env(installed, markers))
    assert result.returncode == 0, result.output
    assert sorted(p.name for p in markers.iterdir()) == [
        "acme_processes.extract",
        "acme_processes.load",
    ]


LOCAL_CLASH = {
    "local_procs.py": """
    from normandy_core import hookimpl

    def mine(pipe):
        pass

    @hookimpl
    def normandy_processes():
        return {"pkg_extract": mine}
"""
}


def test_a_clash_is_listed_with_a_warning(normandy, make_project, installed, tmp_path):
    root = make_project(CONF.replace("envs:", "plugins: [local_procs]\n  envs:"), LOCAL_CLASH)
    result = normandy("list", cwd=root, env=_env(installed, tmp_path / "m"))
    assert result.returncode == 0, result.output
    rows = [line.split(None, 4) for line in result.stdout.splitlines()]
    assert rows[0] == ["PROCESS", "SOURCE", "TARGET", "FLOWS", "NOTE"]
    clashing = [row for row in rows if row[0] == "pkg_extract"]
    assert clashing == [
        ["pkg_extract", "acme-processes", "acme_processes.extract:run", "nightly",
         "clash: choose one in confs.processes"],
        ["pkg_extract", "local_procs", "local_procs:mine", "nightly",
         "clash: choose one in confs.processes"],
    ]
    assert ["pkg_load", "acme-processes", "acme_processes.load:run", "nightly"] in rows
    assert result.stderr == (
        "normandy: warning: process 'pkg_extract' is registered with 2 different targets: "
        "acme_processes.extract:run (from acme-processes); local_procs:mine (from local_procs); "
        'choose one in confs.processes of pipeline_conf.yml (pkg_extract: '
        '"acme_processes.extract:run"), or uninstall acme-processes (pip uninstall NAME), or '
        "remove local_procs from confs.plugins (used by nightly)\n"
    )
    as_json = normandy("list", "--json", cwd=root, env=_env(installed, tmp_path / "m"))
    assert as_json.returncode == 0
    rows = [row for row in json.loads(as_json.stdout) if row["name"] == "pkg_extract"]
    assert [(row["source"], row["clash"]) for row in rows] == [
        ("acme-processes", True),
        ("local_procs", True),
    ]
    assert as_json.stderr == result.stderr


def test_a_clash_stops_only_what_uses_it(normandy, make_project, installed, tmp_path):
    conf = CONF.replace("envs:", "plugins: [local_procs]\n  envs:") + textwrap.indent(
        "other:\n  steps:\n    load: [pkg_load]\n", "  "
    )
    root = make_project(conf, LOCAL_CLASH)
    env = _env(installed, tmp_path / "m")
    for command in (["validate"], ["run", "--dry-run"], ["graph"], ["run"]):
        result = normandy(*command, cwd=root, env=env)
        assert result.returncode == 2, (command, result.output)
        problems = [line for line in result.stderr.splitlines() if "pkg_extract" in line]
        assert len(problems) == 1, result.stderr
        assert problems[0].startswith(
            "pipeline/pipeline_conf.yml:8:17: flows.nightly.steps.extract[0]: process "
            "'pkg_extract' is registered with 2 different targets: acme_processes.extract:run "
            "(from acme-processes); local_procs:mine (from local_procs); choose one in "
            "confs.processes"
        ), result.stderr
        assert "Traceback" not in result.output
    # the flows that do not use it are unaffected
    assert normandy("validate", "--flow", "other", cwd=root, env=env).returncode == 0
    assert normandy("run", "--flow", "other", cwd=root, env=env).returncode == 0
    assert normandy("graph", "--flow", "other", cwd=root, env=env).returncode == 0


def test_confs_processes_resolves_a_clash(normandy, make_project, installed, tmp_path):
    conf = CONF.replace(
        "envs:", "plugins: [local_procs]\n  processes: {pkg_extract: 'local_procs:mine'}\n  envs:"
    )
    root = make_project(conf, LOCAL_CLASH)
    env = _env(installed, tmp_path / "m")
    result = normandy("list", "--json", cwd=root, env=env)
    assert result.returncode == 0, result.output
    assert result.stderr == ""
    [row] = [row for row in json.loads(result.stdout) if row["name"] == "pkg_extract"]
    assert row == {
        "name": "pkg_extract",
        "source": "project",
        "kind": "confs.processes",
        "target": "local_procs:mine",
        "flows": ["nightly"],
        "clash": False,
        "overrides": [
            "acme_processes.extract:run (from acme-processes)",
            "local_procs:mine (from local_procs)",
        ],
    }
    text = normandy("list", "pkg_extract", "pkg_l*", cwd=root, env=env)
    assert text.returncode == 0
    assert [line.split(None, 4) for line in text.stdout.splitlines()[2:]] == [
        ["pkg_extract", "project", "local_procs:mine", "nightly",
         "overrides acme_processes.extract:run (from acme-processes), local_procs:mine "
         "(from local_procs)"],
        ["pkg_load", "acme-processes", "acme_processes.load:run", "nightly"],
    ]
    markers = tmp_path / "markers"
    result = normandy("run", cwd=root, env=_env(installed, markers))
    assert result.returncode == 0, result.output
    # the chosen target ran; the installed one it overrides was never imported
    assert sorted(p.name for p in markers.iterdir()) == ["acme_processes.load"]


def test_same_name_same_target_is_fine(normandy, make_project, installed, tmp_path):
    root = make_project(
        CONF.replace("envs:", "plugins: [local_procs]\n  envs:"),
        {
            "local_procs.py": """
            from normandy_core import hookimpl

            @hookimpl
            def normandy_processes():
                return {"pkg_extract": "acme_processes.extract:run"}
        """
        },
    )
    result = normandy("list", cwd=root, env=_env(installed, tmp_path / "m"))
    assert result.returncode == 0, result.output


def test_installed_plugin_that_fails_to_import(normandy, make_project, tmp_path):
    pkg = tmp_path / "broken-plugin"
    (pkg / "broken_plugin").mkdir(parents=True)
    (pkg / "setup.cfg").write_text(
        "[metadata]\nname = broken-plugin\nversion = 0.1\n[options]\npackages = broken_plugin\n"
        "[options.entry_points]\nnormandy.plugins =\n    broken = broken_plugin\n"
    )
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    (pkg / "broken_plugin" / "__init__.py").write_text("import no_such_dependency\n")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(pkg),
        ],
        check=True,
    )
    result = normandy("list", cwd=make_project(CONF), env={"PYTHONPATH": str(target)})
    assert result.returncode == 2
    assert (
        "error importing plugin 'broken' (broken_plugin, from distribution broken-plugin): "
        "ModuleNotFoundError: No module named 'no_such_dependency'"
    ) in result.stderr
    assert "Traceback" not in result.output


def test_list_with_nothing_registered(normandy, make_project):
    from importlib.metadata import entry_points

    # this environment may hold process packages (the README's quick start installs some)
    installed = {ep.name for ep in entry_points(group="normandy.processes")}
    plugins = list(entry_points(group="normandy.plugins"))
    result = normandy("list", "--json", cwd=make_project(CONF))
    assert result.returncode == 0, result.output
    listed = {row["name"] for row in json.loads(result.stdout)}
    if not plugins:
        assert listed == installed
    if not installed and not plugins:
        text = normandy("list", cwd=make_project(CONF))
        assert "No process is registered" in text.stdout
