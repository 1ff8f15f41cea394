"""The registry (SPEC 3, 4): process names -> targets, and the arguments a process takes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from normandy_core import hookimpl
from normandy_core.errors import (
    DuplicateProcessError,
    HookError,
    PluginError,
    ProcessLoadError,
    RegistryError,
)
from normandy_core.package_file import DeclaredProcesses
from normandy_core.plugins import PluginInfo, make_plugin_manager
from normandy_core.registry import (
    ProcessSpec,
    Registry,
    build_registry,
    import_target,
)

WriteModule = Callable[[Path, str, str], Path]


def spec(name: str, target: str, source: str = "dist-a", obj: Any = None) -> ProcessSpec:
    return ProcessSpec(name, target, source, "entry point" if obj is None else "plugin", obj)


def extract(pipe: Any, log: Any) -> None:
    """A process for the tests."""


def other(pipe: Any) -> None:
    """Another process."""


@pytest.fixture
def importable(
    tmp_path: Path,
    clean_imports: None,
    module_name: Callable[[str], str],
    write_module: WriteModule,
) -> Callable[[str], str]:
    """``importable(code)`` -> the name of a new module holding ``code``, importable now."""
    folder = tmp_path / "importable"
    folder.mkdir()
    sys.path.insert(0, str(folder))

    def make(code: str) -> str:
        name = module_name("proc")
        write_module(folder, name, code)
        return name

    return make


# -- Registry.add -----------------------------------------------------------------------------


def test_the_same_target_twice_is_fine() -> None:
    registry = Registry()
    registry.add(spec("extract", "pkg.mod:extract", "dist-a"))
    registry.add(spec("extract", "pkg.mod:extract", "dist-b"))
    registry.add(spec("callable", f"{__name__}:extract", obj=extract))
    registry.add(spec("callable", f"{__name__}:extract", "dist-b", obj=extract))
    # a callable and the string naming it
    registry.add(spec("callable", f"{__name__}:extract", "dist-c"))
    assert len(registry) == 2
    assert registry.get("extract").source == "dist-a"


def test_two_targets_under_one_name_are_kept_as_a_clash() -> None:
    registry = Registry()
    registry.add(spec("extract", "pkg_a.mod:extract", "dist-a"))
    registry.add(spec("extract", "pkg_b.mod:extract", "dist-b"))  # no error while listing
    registry.add(spec("extract", "pkg_a.mod:extract", "dist-c"))  # the same target again
    registry.add(spec("other", "pkg_a.mod:other", "dist-a"))
    assert [s.describe() for s in registry.targets("extract")] == [
        "pkg_a.mod:extract (from dist-a)",
        "pkg_b.mod:extract (from dist-b)",
    ]
    assert [s.describe() for s in registry] == [
        "pkg_a.mod:extract (from dist-a)",
        "pkg_b.mod:extract (from dist-b)",
        "pkg_a.mod:other (from dist-a)",
    ]
    assert len(registry) == 2 and "extract" in registry
    assert list(registry.clashes()) == ["extract"]
    assert registry.clash("other") is None
    assert registry.get("other").target == "pkg_a.mod:other"  # the others are unaffected


def test_using_a_clashing_name_names_every_source_and_both_ways_out() -> None:
    registry = Registry()
    registry.add(spec("extract", "pkg_a.mod:extract", "dist-a"))
    registry.add(spec("extract", "pkg_b.mod:extract", "dist-b"))
    registry.add(ProcessSpec("extract", "mine:extract", "my_plugin", "project"))
    with pytest.raises(DuplicateProcessError) as info:
        registry.get("extract")
    assert info.value.name == "extract"
    assert isinstance(info.value, RegistryError)
    assert str(info.value) == (
        "process 'extract' is registered with 3 different targets: pkg_a.mod:extract (from "
        "dist-a); pkg_b.mod:extract (from dist-b); mine:extract (from my_plugin); choose one "
        'in confs.processes of pipeline_conf.yml (extract: "pkg_a.mod:extract"), or uninstall '
        "dist-a or dist-b (pip uninstall NAME), or remove my_plugin from confs.plugins"
    )
    assert str(registry.clash("extract")) == str(info.value)
    for use in (registry.load, registry.check):
        with pytest.raises(DuplicateProcessError):
            use("extract")


def test_a_clash_with_the_projects_own_package_says_to_rename_it() -> None:
    registry = Registry()
    registry.add(ProcessSpec("extract", "mine.mod:extract", "my-pipes", "project package"))
    registry.add(spec("extract", "pkg_b.mod:extract", "dist-b"))
    message = str(registry.clash("extract"))
    assert message.endswith(
        "or uninstall dist-b (pip uninstall NAME), or rename it in this project's own "
        "entry points"
    )


def test_two_callables_under_one_name_clash() -> None:
    registry = Registry()
    registry.add(spec("p", f"{__name__}:extract", "plugin-a", obj=extract))
    registry.add(spec("p", f"{__name__}:other", "plugin-b", obj=other))
    with pytest.raises(DuplicateProcessError, match="plugin-a.*plugin-b"):
        registry.load("p")


def test_the_projects_choice_wins_over_every_registration() -> None:
    registry = Registry()
    registry.add(spec("extract", "pkg_a.mod:extract", "dist-a"))
    registry.add(spec("extract", "pkg_b.mod:extract", "dist-b"))
    registry.add(spec("single", "pkg_a.mod:single", "dist-a"))
    registry.choose(ProcessSpec("extract", "pkg_b.mod:extract", "project", "confs.processes"))
    registry.choose(ProcessSpec("single", "local.mod:single", "project", "confs.processes"))
    registry.choose(ProcessSpec("new", "local.mod:new", "project", "confs.processes"))
    assert registry.clashes() == {}
    assert registry.clash("extract") is None
    assert registry.get("extract").describe() == "pkg_b.mod:extract (from project)"
    assert registry.get("single").target == "local.mod:single"
    assert [s.describe() for s in registry.overridden("extract")] == [
        "pkg_a.mod:extract (from dist-a)",
        "pkg_b.mod:extract (from dist-b)",
    ]
    assert registry.overridden("new") == ()
    assert [(s.name, s.source) for s in registry] == [
        ("extract", "project"),
        ("new", "project"),
        ("single", "project"),
    ]
    assert len(registry) == 3


def test_an_unknown_name() -> None:
    registry = Registry()
    assert "nope" not in registry and registry.targets("nope") == ()
    with pytest.raises(KeyError):
        registry.get("nope")


@pytest.mark.parametrize("name", ["", "1abc", "has space", "a/b", "-x", "a:b", "é"])
def test_invalid_names_are_rejected(name: str) -> None:
    with pytest.raises(ProcessLoadError) as info:
        Registry().add(spec(name, "pkg:f", "dist-x"))
    assert repr(name) in str(info.value)
    assert "dist-x" in str(info.value)
    with pytest.raises(ProcessLoadError):
        Registry().choose(spec(name, "pkg:f", "project"))


@pytest.mark.parametrize("name", ["a", "_x", "read_file", "a.b-c_d", "X9"])
def test_valid_names(name: str) -> None:
    registry = Registry()
    registry.add(spec(name, "pkg:f"))
    assert name in registry


def test_lookup_and_order() -> None:
    registry = Registry()
    for name in ("zeta", "alpha", "mid"):
        registry.add(spec(name, f"pkg:{name}"))
    assert [s.name for s in registry] == ["alpha", "mid", "zeta"]
    assert "alpha" in registry and "beta" not in registry
    assert registry.get("mid").target == "pkg:mid"


def test_suggest() -> None:
    registry = Registry()
    for name in ("read_file", "read_db", "process_data", "prints"):
        registry.add(spec(name, f"pkg:{name}"))
    assert registry.suggest("read_fil")[0] == "read_file"
    assert registry.suggest("proces_data") == ["process_data"]
    assert registry.suggest("zzzzzz") == []
    assert len(registry.suggest("read")) <= 3


def test_suggest_only_what_is_as_close_as_the_closest() -> None:
    """The names of a package share its prefix: `acme.transfrom_totals` suggested
    `acme.transform_totals` or `acme.transform_countries`, two unrelated names (issue 23)."""
    registry = Registry()
    for name in ("totals", "countries", "extract_orders", "extract_customers", "upload"):
        registry.add(spec(f"acme.{name}", f"acme.processes:{name}"))
    registry.add(spec("acme.transform_totals", "acme.processes:transform_totals"))
    registry.add(spec("acme.transform_countries", "acme.processes:transform_countries"))
    assert registry.suggest("acme.transfrom_totals") == ["acme.transform_totals"]
    assert registry.suggest("acme.extract_order") == ["acme.extract_orders"]
    # a name without its package's prefix
    assert registry.suggest("upload") == ["acme.upload"]


# -- importing --------------------------------------------------------------------------------


def test_import_target(importable: Callable[[str], str]) -> None:
    module = importable("""
        def f(pipe):
            return "f"

        class Holder:
            @staticmethod
            def g(params):
                return "g"
    """)
    assert import_target(f"{module}:f")(None) == "f"
    assert import_target(f"{module}:Holder.g")(None) == "g"
    assert import_target("os.path:join") is __import__("os").path.join


def test_import_target_missing_module() -> None:
    with pytest.raises(ProcessLoadError) as info:
        import_target("nd_no_such_module_anywhere:f", "extract", "dist-a")
    message = str(info.value)
    assert message.startswith(
        "cannot import process 'extract' (nd_no_such_module_anywhere:f, from dist-a): "
        "ModuleNotFoundError"
    )


def test_import_target_module_that_raises(importable: Callable[[str], str]) -> None:
    module = importable("raise RuntimeError('broken on purpose')\n")
    with pytest.raises(ProcessLoadError) as info:
        import_target(f"{module}:f", "extract")
    assert str(info.value) == (
        f"cannot import process 'extract' ({module}:f): RuntimeError: broken on purpose"
    )
    assert isinstance(info.value.__cause__, RuntimeError)


def test_import_target_missing_attribute(importable: Callable[[str], str]) -> None:
    module = importable("def f(pipe):\n    pass\n")
    with pytest.raises(ProcessLoadError) as info:
        import_target(f"{module}:nope", "extract")
    assert str(info.value) == (
        f"cannot import process 'extract' ({module}:nope): {module} has no attribute 'nope'"
    )


def test_import_target_not_callable(importable: Callable[[str], str]) -> None:
    module = importable("VALUE = 3\n")
    with pytest.raises(ProcessLoadError) as info:
        import_target(f"{module}:VALUE", "extract")
    assert str(info.value) == f"process 'extract' ({module}:VALUE) is not callable but int"


def test_load_imports_once_and_check_gives_arguments(importable: Callable[[str], str]) -> None:
    module = importable("""
        CALLS = []

        def f(pipe, params):
            CALLS.append(1)
    """)
    registry = Registry()
    registry.add(spec("p", f"{module}:f"))
    assert module not in sys.modules  # listing imports nothing
    fn = registry.load("p")
    assert registry.load("p") is fn
    assert fn is sys.modules[module].f
    assert registry.check("p").reserved == ("pipe", "params")


def test_load_gives_a_registered_callable_without_importing() -> None:
    registry = Registry()
    registry.add(spec("p", "nd_never_imported_module:extract", obj=extract))
    assert registry.load("p") is extract
    assert registry.check("p").reserved == ("pipe", "log")


def test_check_names_the_process_that_cannot_be_imported() -> None:
    registry = Registry()
    registry.add(spec("ghost", "nd_ghost_module_xyz:run", "dist-ghost"))
    with pytest.raises(
        ProcessLoadError,
        match=r"process 'ghost' \(nd_ghost_module_xyz:run, "
        r"from dist-ghost\)",
    ):
        registry.check("ghost")


# -- build_registry from plugins --------------------------------------------------------------


class ProcessesPlugin:
    """An object plugin (like an installed ``normandy.plugins`` entry point)."""

    def __init__(self, processes: Any) -> None:
        self.processes = processes

    @hookimpl
    def normandy_processes(self) -> Any:
        return self.processes


class FailingPlugin:
    @hookimpl
    def normandy_processes(self) -> Any:
        raise KeyError("boom")


def manager_with(*plugins: tuple[object, PluginInfo]) -> Any:
    pm = make_plugin_manager(installed=False)
    for plugin, info in plugins:
        pm.register_plugin(plugin, info)
    return pm


def test_build_registry_from_an_object_plugin() -> None:
    plugin = ProcessesPlugin(
        {
            "extract": extract,
            "join": "os.path : join",
            "missing": "nd_not_imported_while_listing:run",
        }
    )
    registry = build_registry(manager_with((plugin, PluginInfo("mine", "my-dist", "installed"))))
    assert {s.name for s in registry} >= {"extract", "join", "missing"}
    ext = registry.get("extract")
    assert (ext.target, ext.source, ext.kind) == (f"{__name__}:extract", "my-dist", "plugin")
    assert registry.load("extract") is extract
    join = registry.get("join")
    assert (join.target, join.source, join.kind) == ("os.path:join", "my-dist", "plugin")
    assert registry.load("join") is __import__("os").path.join
    # listing did not import the module of a string target
    assert "nd_not_imported_while_listing" not in sys.modules
    with pytest.raises(ProcessLoadError, match="'missing'"):
        registry.load("missing")


def test_project_plugins_register_project_processes() -> None:
    plugin = ProcessesPlugin({"extract": extract})
    registry = build_registry(manager_with((plugin, PluginInfo("proj.mod", "proj.mod", "project"))))
    assert registry.get("extract").kind == "project"
    assert registry.get("extract").source == "proj.mod"


def test_two_plugins_with_one_name_and_two_targets() -> None:
    pm = manager_with(
        (ProcessesPlugin({"extract": extract}), PluginInfo("one", "dist-one", "installed")),
        (
            ProcessesPlugin({"extract": "pkg.other:extract"}),
            PluginInfo("two", "dist-two", "installed"),
        ),
    )
    registry = build_registry(pm)  # listing is not an error
    with pytest.raises(DuplicateProcessError) as info:
        registry.get("extract")
    assert "dist-one" in str(info.value) and "dist-two" in str(info.value)
    assert "or uninstall dist-one or dist-two (pip uninstall NAME)" in str(info.value)


def test_a_hook_that_raises_names_the_plugin() -> None:
    pm = manager_with((FailingPlugin(), PluginInfo("failing", "failing-dist", "installed")))
    with pytest.raises(HookError) as info:
        build_registry(pm)
    error = info.value
    assert (error.plugin, error.hook) == ("failing", "normandy_processes")
    assert isinstance(error.cause, KeyError)
    assert str(error) == "plugin 'failing' failed in hook normandy_processes: KeyError: 'boom'"
    assert isinstance(error, PluginError)


@pytest.mark.parametrize("result", [["extract"], "extract", 3])
def test_a_hook_returning_a_non_mapping(result: Any) -> None:
    pm = manager_with((ProcessesPlugin(result), PluginInfo("odd", "odd-dist", "installed")))
    with pytest.raises(PluginError) as info:
        build_registry(pm)
    assert info.value.plugin == "odd"
    assert str(info.value).startswith(
        "plugin 'odd' (odd-dist): normandy_processes must return a mapping"
    )
    assert not isinstance(info.value, HookError)


def test_a_hook_returning_none_registers_nothing() -> None:
    pm = manager_with((ProcessesPlugin(None), PluginInfo("quiet", "quiet-dist", "installed")))
    assert "extract" not in build_registry(pm)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("pkg.mod.extract", "must look like 'package.module:function'"),
        (3, "expected a callable or 'module:attribute', got int"),
    ],
)
def test_a_hook_returning_a_bad_target(target: Any, message: str) -> None:
    pm = manager_with(
        (ProcessesPlugin({"extract": target}), PluginInfo("bad", "bad-dist", "installed"))
    )
    with pytest.raises(ProcessLoadError) as info:
        build_registry(pm)
    assert "process 'extract' from bad-dist" in str(info.value)
    assert message in str(info.value)


def test_entry_points_are_listed_without_importing(fake_dist: Callable[..., Path]) -> None:
    fake_dist(
        "nd-fake-processes",
        {
            "normandy.processes": {
                "nd_ep_extract": "nd_ep_module_never_imported:extract",
                "nd_ep_join": "os.path:join",
            }
        },
    )
    registry = build_registry(make_plugin_manager(installed=False))
    ext = registry.get("nd_ep_extract")
    assert (ext.target, ext.source, ext.kind) == (
        "nd_ep_module_never_imported:extract",
        "nd-fake-processes",
        "entry point",
    )
    assert "nd_ep_module_never_imported" not in sys.modules
    assert registry.load("nd_ep_join") is __import__("os").path.join
    with pytest.raises(ProcessLoadError, match="process 'nd_ep_extract'.*from nd-fake-processes"):
        registry.check("nd_ep_extract")


def test_an_entry_point_and_a_plugin_with_two_targets(fake_dist: Callable[..., Path]) -> None:
    fake_dist("nd-fake-first", {"normandy.processes": {"nd_ep_clash": "pkg_one.mod:clash"}})
    pm = manager_with(
        (
            ProcessesPlugin({"nd_ep_clash": "pkg_two.mod:clash"}),
            PluginInfo("two", "dist-two", "installed"),
        )
    )
    registry = build_registry(pm)
    error = registry.clash("nd_ep_clash")
    assert error is not None
    assert "pkg_one.mod:clash (from nd-fake-first)" in str(error)
    assert "pkg_two.mod:clash (from dist-two)" in str(error)


# -- the project's own package and confs.processes -------------------------------------------


def declared(processes: dict[str, str], dist: str | None = "My_Pipes") -> DeclaredProcesses:
    return DeclaredProcesses(dist, Path("setup.cfg"), processes)


def test_the_projects_own_entry_points_are_registered(fake_dist: Callable[..., Path]) -> None:
    registry = build_registry(
        make_plugin_manager(installed=False),
        declared({"mine.extract": "my_pipes.processes:extract"}),
    )
    spec = registry.get("mine.extract")
    assert (spec.target, spec.source, spec.kind) == (
        "my_pipes.processes:extract",
        "My_Pipes",
        "project package",
    )


def test_an_installed_copy_of_the_project_is_the_same_source(
    fake_dist: Callable[..., Path],
) -> None:
    # installed (or editable) from an older state of its file: a renamed target, a
    # process since removed; the project's file is what counts, never a clash
    fake_dist(
        "my-pipes",
        {
            "normandy.processes": {
                "mine.extract": "my_pipes.old:extract",
                "mine.removed": "my_pipes.old:removed",
            }
        },
    )
    fake_dist("other-pipes", {"normandy.processes": {"other.load": "other_pipes:load"}})
    registry = build_registry(
        make_plugin_manager(installed=False),
        declared({"mine.extract": "my_pipes.processes:extract"}),
    )
    assert registry.clashes() == {}
    assert registry.get("mine.extract").target == "my_pipes.processes:extract"
    assert "mine.removed" not in registry
    assert registry.get("other.load").source == "other-pipes"
    # another project of the same environment sees the installed copy as it is
    elsewhere = build_registry(make_plugin_manager(installed=False))
    assert elsewhere.get("mine.extract").target == "my_pipes.old:extract"
    assert elsewhere.get("mine.extract").source == "my-pipes"


def test_the_projects_entry_points_can_clash_with_another_package(
    fake_dist: Callable[..., Path],
) -> None:
    fake_dist("other-pipes", {"normandy.processes": {"extract": "other_pipes:extract"}})
    registry = build_registry(
        make_plugin_manager(installed=False), declared({"extract": "my_pipes.processes:extract"})
    )
    assert [s.source for s in registry.clashes()["extract"]] == ["My_Pipes", "other-pipes"]


def test_confs_processes_resolve_a_clash_and_add_names(fake_dist: Callable[..., Path]) -> None:
    fake_dist("pipes-a", {"normandy.processes": {"nd_shared": "pipes_a:shared"}})
    fake_dist("pipes-b", {"normandy.processes": {"nd_shared": "pipes_b:shared"}})
    pm = make_plugin_manager(installed=False)
    assert list(build_registry(pm).clashes()) == ["nd_shared"]
    registry = build_registry(
        pm, chosen={"nd_shared": "pipes_b:shared", "nd_local": "local_mod:run"}
    )
    assert registry.clashes() == {}
    chosen = registry.get("nd_shared")
    assert (chosen.target, chosen.source, chosen.kind) == (
        "pipes_b:shared",
        "project",
        "confs.processes",
    )
    assert registry.get("nd_local").source == "project"
    assert "local_mod" not in sys.modules  # registering imports nothing
