"""A project: finding its root, opening it, and checking it before a run (SPEC 6, 9)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from normandy_core.errors import ConfigError, ProjectNotFoundError
from normandy_core.plan import Plan, Selection, build_plan
from normandy_core.project import Checked, Project, check_project, find_project_root, open_project

FILE = "pipeline/pipeline_conf.yml"

WriteConf = Callable[..., Path]
WriteModule = Callable[[Path, str, str], Path]
ModuleName = Callable[[str], str]

PROCESSES = """
from normandy_core import hookimpl

def extract(pipe, log):
    pass

def needs_extra(pipe, extra):
    pass

@hookimpl
def normandy_processes():
    return {{
        "extract": extract,
        "needs_extra": needs_extra,
        "broken": "{broken}:run",
    }}
"""

CONF = """
confs:
  plugins: [{plugin}]
  envs:
    dev:
      read: ${{env:READ_DIR:raw}}
    prod:
      credentials: conf/prod.yml
flows:
  good:
    tags: [default]
    steps:
      read: [extract]
  bad_signature:
    steps:
      read: [needs_extra]
  bad_import:
    steps:
      read: [broken]
"""


@pytest.fixture
def plugin(
    project_dir: Path, clean_imports: None, write_module: WriteModule, module_name: ModuleName
) -> str:
    """A project plugin module in ``src/`` registering extract, needs_extra and broken."""
    plugin, broken = module_name("plugin"), module_name("broken")
    write_module(project_dir / "src", plugin, PROCESSES.format(broken=broken))
    write_module(project_dir / "src", broken, "raise RuntimeError('broken module imported')\n")
    return plugin


@pytest.fixture
def opened(write_conf: WriteConf, plugin: str) -> Project:
    root = write_conf(CONF.format(plugin=plugin))
    return open_project(root, environ={})


# -- finding the root -------------------------------------------------------------------------


def test_find_project_root_searches_upward(write_conf: WriteConf, project_dir: Path) -> None:
    root = write_conf(CONF.format(plugin="x"))
    deep = root / "data" / "raw" / "2024"
    deep.mkdir(parents=True)
    (deep / "file.csv").write_text("a\n")
    assert find_project_root(deep) == root.resolve()
    assert find_project_root(deep / "file.csv") == root.resolve()
    assert find_project_root(root) == root.resolve()
    assert find_project_root() == root.resolve()  # the current folder


def test_the_nearest_project_wins(write_conf: WriteConf, project_dir: Path) -> None:
    outer = write_conf(CONF.format(plugin="x"))
    inner = write_conf(CONF.format(plugin="y"), root=outer / "sub" / "inner")
    assert find_project_root(inner / "pipeline") == inner.resolve()
    assert find_project_root(outer / "sub") == outer.resolve()


def test_no_project_found(tmp_path: Path) -> None:
    start = tmp_path / "empty" / "deeper"
    start.mkdir(parents=True)
    (tmp_path / "empty" / "pipeline").mkdir()  # a pipeline/ folder without the file
    with pytest.raises(ProjectNotFoundError) as info:
        find_project_root(start)
    message = str(info.value)
    assert message.startswith(f"no {Path('pipeline') / 'pipeline_conf.yml'} in {start.resolve()}")
    assert "--project DIR" in message and "normandy create-project PATH" in message


# -- opening ----------------------------------------------------------------------------------


def test_open_project(opened: Project, project_dir: Path, plugin: str) -> None:
    assert opened.root == project_dir.resolve()
    assert opened.problems == []
    assert {"extract", "needs_extra", "broken"} <= {spec.name for spec in opened.registry}
    assert opened.registry.get("extract").kind == "project"
    assert opened.registry.get("extract").source == plugin
    assert plugin in opened.plugins.infos
    # listing did not import the module of a string target
    assert not any(name.startswith("nd_broken_") for name in sys.modules)


def test_open_project_from_a_subfolder(write_conf: WriteConf, plugin: str) -> None:
    root = write_conf(CONF.format(plugin=plugin))
    (root / "notebooks").mkdir()
    assert open_project(root / "notebooks", environ={}).root == root.resolve()


def test_open_project_with_a_syntax_error(write_conf: WriteConf) -> None:
    root = write_conf("confs:\n  envs: [dev\nflows: {}\n")
    with pytest.raises(ConfigError) as info:
        open_project(root, environ={})
    assert [str(p) for p in info.value.problems] == [
        f"{FILE}:3:6: YAML syntax error: did not find expected ',' or ']'"
    ]


def test_open_project_with_a_plugin_that_fails_to_import(
    write_conf: WriteConf,
    project_dir: Path,
    clean_imports: None,
    write_module: WriteModule,
    module_name: ModuleName,
) -> None:
    broken = module_name("broken_plugin")
    write_module(project_dir, broken, "import nd_this_dependency_is_missing\n")
    root = write_conf(f"""
        confs:
          plugins:
            - os.path
            - {broken}
          envs: {{dev: }}
          wokers: 2
        flows:
          main: {{steps: {{s: [a]}}}}
    """)
    with pytest.raises(ConfigError) as info:
        open_project(root, environ={})
    problems = [str(p) for p in info.value.problems]
    assert (
        problems[0] == f"{FILE}:4:7: confs.plugins[1]: error importing project plugin "
        f"{broken!r} (listed in confs.plugins): ModuleNotFoundError: No "
        "module named 'nd_this_dependency_is_missing'"
    )
    # the file's own problems come along
    assert problems[1].startswith(f"{FILE}:6:3: confs.wokers: unknown key 'wokers'")


# -- checking ---------------------------------------------------------------------------------


def test_check_a_good_flow(opened: Project) -> None:
    checked = check_project(opened, ["good"], environ={"READ_DIR": "elsewhere"})
    assert checked == Checked("dev", {"read": "elsewhere"}, {})


def test_schema_problems_and_unknown_processes_are_reported_together(
    write_conf: WriteConf, plugin: str
) -> None:
    root = write_conf(f"""
        confs:
          plugins: [{plugin}]
          envs: {{dev: }}
        flows:
          main:
            tag: [default]
            steps:
              read: [extrct, extract]
              write:
                nothing_like_it: {{retries: 1}}
    """)
    project = open_project(root, environ={})
    assert [p.path for p in project.problems] == ["flows.main.tag"]
    with pytest.raises(ConfigError) as info:
        check_project(project, environ={})
    problems = [str(p) for p in info.value.problems]
    assert len(problems) == 3
    assert problems[0] == f"{FILE}:6:5: flows.main.tag: unknown key 'tag'; did you mean 'tags'?"
    assert problems[1].startswith(
        f"{FILE}:8:14: flows.main.steps.read[0]: unknown process 'extrct'; did you mean "
        "'extract'? Or register it through the entry-point group normandy.processes"
    )
    assert problems[2].startswith(
        f"{FILE}:10:9: flows.main.steps.write.nothing_like_it: unknown process "
        "'nothing_like_it'; register it"
    )
    assert str(info.value).splitlines() == problems


def test_inputs_are_checked_only_for_the_flows_checked(opened: Project) -> None:
    def plan(flow: str) -> Plan:
        return build_plan(opened.config, Selection(flows=(flow,)))

    assert check_project(opened, ["good"], environ={}, plan=plan("good")).env == "dev"
    with pytest.raises(ConfigError) as info:
        check_project(opened, ["bad_signature"], environ={}, plan=plan("bad_signature"))
    [problem] = info.value.problems
    assert (problem.line, problem.column) == (15, 14)
    assert problem.path == "flows.bad_signature.steps.read[0]"
    assert problem.message.startswith(
        "process 'needs_extra' takes 'extra', which no step of flow 'bad_signature' before "
        "'read' outputs (no step before it declares outputs; a variable written through "
        "pipe.vars counts once declared in its task's outputs); declare 'extra' in the "
        "outputs of the task that makes it, map 'extra' to another variable"
    )
    # an input is a parameter like any: the process itself is fine
    check_project(opened, ["bad_signature"], environ={})


def test_only_the_processes_of_the_flows_checked_are_imported(opened: Project) -> None:
    check_project(opened, ["good", "bad_signature"], signatures=False, environ={})
    check_project(opened, ["good"], environ={})
    assert not any(name.startswith("nd_broken_") for name in sys.modules)
    with pytest.raises(ConfigError) as info:
        check_project(opened, ["bad_import"], environ={})
    [problem] = info.value.problems
    assert (problem.line, problem.path) == (18, "flows.bad_import.steps.read[0]")
    assert problem.message.startswith("cannot import process 'broken'")
    assert "RuntimeError: broken module imported" in problem.message


def test_all_flows_are_checked_by_default(opened: Project) -> None:
    plan = build_plan(opened.config, Selection(flows=tuple(opened.config.flows)))
    with pytest.raises(ConfigError) as info:
        check_project(opened, environ={}, plan=plan)
    assert [p.path for p in info.value.problems] == [
        "flows.bad_signature.steps.read[0]",
        "flows.bad_import.steps.read[0]",
    ]


def test_an_unknown_env(opened: Project) -> None:
    with pytest.raises(ConfigError) as info:
        check_project(opened, ["good"], env="prd", environ={})
    assert [str(p) for p in info.value.problems] == [
        f"{FILE}:3:3: confs.envs: unknown env 'prd' (from --env); did you mean 'prod'? The "
        "envs are: dev, prod"
    ]
    with pytest.raises(ConfigError) as info:
        check_project(opened, ["good"], env="qa", environ={})
    assert str(info.value).endswith("unknown env 'qa' (from --env); the envs are: dev, prod")


def test_env_problems_come_with_the_others(opened: Project) -> None:
    both = build_plan(opened.config, Selection(flows=("good", "bad_signature")))
    with pytest.raises(ConfigError) as info:
        check_project(opened, ["good", "bad_signature"], env="prod", environ={}, plan=both)
    assert [(p.line, p.path) for p in info.value.problems] == [
        (7, "confs.envs.prod.credentials"),
        (15, "flows.bad_signature.steps.read[0]"),
    ]
    assert "credentials file conf/prod.yml does not exist" in info.value.problems[0].message
    # without check_env, the env is chosen but its files are not read
    checked = check_project(opened, ["good"], env="prod", check_env=False, environ={})
    assert checked == Checked("prod", {}, {})


def test_credentials_are_loaded(opened: Project, project_dir: Path) -> None:
    (project_dir / "conf").mkdir()
    (project_dir / "conf" / "prod.yml").write_text("token: ${env:TOKEN}\n")
    checked = check_project(opened, ["good"], env="prod", environ={"TOKEN": "t0k"})
    assert checked.credentials == {"token": "t0k"}
    assert checked.settings == {"credentials": "conf/prod.yml"}


# -- the store and the executor, checked on this machine ----------------------------------


def test_a_store_this_machine_cannot_open(write_conf: WriteConf, plugin: str) -> None:
    pytest.importorskip("fsspec")
    root = write_conf(f"""
        confs:
          plugins: [{plugin}]
          store: nope://bucket/state
          envs: {{dev: }}
        flows:
          main: {{tags: [default], steps: {{read: [extract]}}}}
    """)
    with pytest.raises(ConfigError) as info:
        check_project(open_project(root, environ={}), environ={})
    assert [str(p) for p in info.value.problems] == [
        f"{FILE}:3:10: confs.store: unknown protocol 'nope' in the store 'nope://bucket/state'; "
        "use a path, file://, or a protocol of fsspec (s3://, gcs://, abfs://…)"
    ]


def test_an_executor_that_cannot_run_here(
    write_conf: WriteConf, plugin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from normandy_core.executors.dask.executor import DaskExecutor

    root = write_conf(f"""
        confs:
          plugins: [{plugin}]
          executor: dask
          envs: {{dev: }}
        flows:
          main: {{tags: [default], steps: {{read: [extract]}}}}
    """)
    project = open_project(root, environ={})
    # as without the extra: the engine says what is missing (see also tests/cli/test_dask.py)
    monkeypatch.setattr(DaskExecutor, "unavailable", classmethod(lambda cls: "needs X"))
    with pytest.raises(ConfigError) as info:
        check_project(project, environ={})
    assert [str(p) for p in info.value.problems] == [
        f"{FILE}:3:13: confs.executor: executor 'dask' cannot run: needs X"
    ]
    with pytest.raises(ConfigError) as info:
        check_project(project, executor="dask", environ={})
    assert "executor 'dask' (from --executor) cannot run: needs X" in str(info.value)


# -- sharing: clashes, confs.processes, the project's own package (SPEC 14) -----------------


CLASHING = """
from normandy_core import hookimpl

@hookimpl
def normandy_processes():
    return {{"extract": "{module}:extract", "{unique}": "{module}:extract"}}
"""


@pytest.fixture
def clashing(
    project_dir: Path, plugin: str, write_module: WriteModule, module_name: ModuleName
) -> str:
    """A second project plugin registering ``extract`` to another target than ``plugin``."""
    other, procs = module_name("other"), module_name("procs")
    write_module(project_dir / "src", procs, "def extract(pipe):\n    pass\n")
    write_module(
        project_dir / "src", other, CLASHING.format(module=procs, unique=f"{procs}_only")
    )
    return other


def test_a_clash_is_an_error_only_where_the_name_is_used(
    write_conf: WriteConf, plugin: str, clashing: str
) -> None:
    root = write_conf(f"""
        confs:
          plugins: [{plugin}, {clashing}]
          envs: {{dev: }}
        flows:
          uses_it:
            steps:
              read: [extract]
              again: {{extract: {{retries: 1}}}}
          does_not:
            steps:
              read: [needs_extra]
    """)
    project = open_project(root, environ={})  # opening and listing: no error
    assert list(project.registry.clashes()) == ["extract"]
    with pytest.raises(ConfigError) as info:
        check_project(project, ["does_not", "uses_it"], signatures=False, environ={})
    problems = info.value.problems
    assert [(p.line, p.column, p.path) for p in problems] == [
        (7, 14, "flows.uses_it.steps.read[0]"),
        (8, 15, "flows.uses_it.steps.again.extract"),
    ]
    message = problems[0].message
    assert message.startswith("process 'extract' is registered with 2 different targets: ")
    assert f"(from {plugin})" in message and f"(from {clashing})" in message
    assert "choose one in confs.processes of pipeline_conf.yml (extract: " in message
    first, second = sorted([plugin, clashing])
    assert f"remove {first} or {second} from confs.plugins" in message
    # a flow that does not use the name is unaffected, its data flow checked included
    does_not = build_plan(project.config, Selection(flows=("does_not",)))
    with pytest.raises(ConfigError) as info:
        check_project(project, ["does_not"], environ={}, plan=does_not)
    assert "process 'needs_extra' takes 'extra'" in info.value.problems[0].message


def test_confs_processes_chooses_among_the_targets(
    write_conf: WriteConf, plugin: str, clashing: str, project_dir: Path
) -> None:
    procs = next(p.stem for p in (project_dir / "src").glob("nd_procs_*.py"))
    root = write_conf(f"""
        confs:
          plugins: [{plugin}, {clashing}]
          processes:
            extract: "{procs}:extract"
          envs: {{dev: }}
        flows:
          main: {{steps: {{read: [extract]}}}}
    """)
    project = open_project(root, environ={})
    assert project.problems == [] and project.registry.clashes() == {}
    chosen = project.registry.get("extract")
    assert (chosen.target, chosen.source, chosen.kind) == (
        f"{procs}:extract",
        "project",
        "confs.processes",
    )
    assert len(project.registry.overridden("extract")) == 2
    check_project(project, environ={})
    assert project.registry.check("extract").reserved == ("pipe",)


def test_confs_processes_registers_the_projects_own_modules_without_importing_them(
    write_conf: WriteConf, project_dir: Path, write_module: WriteModule, module_name: ModuleName
) -> None:
    local = module_name("local")
    write_module(project_dir / "src", f"{local}.steps", "def load(pipe, params):\n    pass\n")
    root = write_conf(f"""
        confs:
          processes:
            {local}.load: {local}.steps:load
            {local}.unused: {local}.nowhere:unused
          envs: {{dev: }}
        flows:
          main: {{steps: {{load: [{local}.load]}}}}
    """)
    project = open_project(root, environ={})
    assert project.problems == []
    assert project.registry.get(f"{local}.load").source == "project"
    assert not any(name.startswith(local) for name in sys.modules)  # listing imports nothing
    check_project(project, environ={})  # imported from src/, only what the flows use
    assert f"{local}.steps" in sys.modules and f"{local}.nowhere" not in sys.modules


def test_confs_processes_must_map_names_to_targets(write_conf: WriteConf) -> None:
    root = write_conf("""
        confs:
          processes:
            good: pkg.mod:run
            bad name: pkg.mod:run
            no_colon: pkg.mod.run
            not_text: ["pkg.mod:run"]
          envs: {dev: }
        flows:
          main: {steps: {s: [good]}}
    """)
    project = open_project(root, environ={})
    assert [str(p) for p in project.problems] == [
        f"{FILE}:4:5: confs.processes.bad name: invalid process name 'bad name': names match "
        "[A-Za-z_][A-Za-z0-9_.-]*",
        f"{FILE}:5:15: confs.processes.no_colon: invalid target 'pkg.mod.run': write "
        "'package.module:function', the module importable from the project root or its src/ "
        "folder",
        f"{FILE}:6:15: confs.processes.not_text: must be a string, not a list",
    ]
    assert dict(project.config.processes) == {"good": "pkg.mod:run"}
    assert project.registry.get("good").kind == "confs.processes"
    root = write_conf("confs:\n  processes: [a]\n  envs: {dev: }\nflows:\n  m: {steps: {s: [a]}}\n")
    assert [str(p) for p in open_project(root, environ={}).problems] == [
        f"{FILE}:2:14: confs.processes: must be a mapping, not a list"
    ]


def test_a_project_that_is_a_package_registers_itself(
    write_conf: WriteConf, project_dir: Path, write_module: WriteModule, module_name: ModuleName
) -> None:
    pkg = module_name("pkg")
    write_module(project_dir / "src", f"{pkg}.processes", "def extract(log):\n    pass\n")
    (project_dir / "setup.cfg").write_text(
        f"[metadata]\nname = {pkg}\n\n[options.entry_points]\nnormandy.processes =\n"
        f"    {pkg}.extract = {pkg}.processes:extract\n"
    )
    root = write_conf(f"""
        confs:
          envs: {{dev: }}
        flows:
          main: {{steps: {{read: [{pkg}.extract]}}}}
    """)
    project = open_project(root, environ={})
    spec = project.registry.get(f"{pkg}.extract")
    assert (spec.source, spec.kind) == (pkg, "project package")
    assert f"{pkg}.processes" not in sys.modules
    check_project(project, environ={})  # imported from the project's src/, not installed
    assert sys.modules[f"{pkg}.processes"].__file__ == str(
        project_dir.resolve() / "src" / pkg / "processes.py"
    )


def test_problems_of_the_projects_package_file_are_reported(
    write_conf: WriteConf, project_dir: Path
) -> None:
    (project_dir / "setup.cfg").write_text(
        "[options.entry_points]\nnormandy.processes =\n    just a name\n"
    )
    root = write_conf("confs:\n  envs: {dev: }\nflows:\n  m: {steps: {s: [a]}}\n")
    project = open_project(root, environ={})
    assert [str(p) for p in project.problems] == [
        "setup.cfg:3:1: options.entry_points.normandy.processes: 'just a name' is not an "
        "entry point: write 'name = package.module:function'"
    ]
