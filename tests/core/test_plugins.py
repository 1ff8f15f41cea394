"""The plugin manager (SPEC 3): hook specifications, project and installed plugins."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import pytest

import normandy_core
from normandy_core import hookimpl, hookspecs
from normandy_core.errors import HookError, PluginError
from normandy_core.plugins import (
    PluginInfo,
    PluginManager,
    add_project_paths,
    available_executors,
    make_plugin_manager,
)

WriteModule = Callable[[Path, str, str], Path]
ModuleName = Callable[[str], str]

PROCESSES_PLUGIN = """
from normandy_core import hookimpl

def {name}(pipe, log):
    pass

@hookimpl
def normandy_processes():
    return {{"{name}": {name}, "{name}_str": "{module}:{name}"}}
"""


@pytest.fixture
def project(tmp_path: Path, clean_imports: None) -> Path:
    """A project root whose modules tests write; sys.path and sys.modules are restored."""
    root = tmp_path / "project"
    root.mkdir()
    return root


def processes_plugin(write_module: WriteModule, folder: Path, module: str, name: str) -> None:
    write_module(folder, module, PROCESSES_PLUGIN.format(name=name, module=module))


def results(pm: PluginManager, hook: str, **kwargs: Any) -> dict[str, Any]:
    """What each plugin but Normandy's own built-in ones returned."""
    return {
        info.name: result for info, result in pm.call_each(hook, **kwargs) if info.kind != "builtin"
    }


def added(pm: PluginManager) -> dict[str, PluginInfo]:
    """The plugins a manager holds besides Normandy's built-in ones."""
    return {name: info for name, info in pm.infos.items() if info.kind != "builtin"}


# -- project plugins --------------------------------------------------------------------------


def test_project_plugin_from_the_project_root(
    project: Path, write_module: WriteModule, module_name: ModuleName
) -> None:
    module = module_name("plugin")
    processes_plugin(write_module, project, module, "extract")
    pm = make_plugin_manager([module], project, installed=False)
    assert added(pm) == {module: PluginInfo(module, module, "project")}
    assert pm.get_plugin(module) is sys.modules[module]
    result = results(pm, "normandy_processes")[module]
    assert set(result) == {"extract", "extract_str"}
    assert result["extract_str"] == f"{module}:extract"


def test_project_plugin_from_src_in_a_package(
    project: Path, write_module: WriteModule, module_name: ModuleName
) -> None:
    package = module_name("pkg")
    module = f"{package}.plugin"
    processes_plugin(write_module, project / "src", module, "load")
    pm = make_plugin_manager([module], project, installed=False)
    assert set(results(pm, "normandy_processes")[module]) == {"load", "load_str"}
    assert sys.modules[module].__file__ == str(project / "src" / package / "plugin.py")


def test_several_project_plugins(
    project: Path, write_module: WriteModule, module_name: ModuleName
) -> None:
    first, second = module_name("one"), module_name("two")
    processes_plugin(write_module, project, first, "a")
    processes_plugin(write_module, project / "src", second, "b")
    pm = make_plugin_manager([first, second, first], project, installed=False)
    assert list(added(pm)) == [first, second]
    assert {name for name, _ in pm.list_name_plugin()} >= {first, second}
    assert set(results(pm, "normandy_processes")) == {first, second}


def test_a_project_plugin_that_fails_to_import(
    project: Path, write_module: WriteModule, module_name: ModuleName
) -> None:
    module = module_name("broken")
    write_module(project, module, "x = 1 / 0\n")
    with pytest.raises(PluginError) as info:
        make_plugin_manager([module], project, installed=False)
    assert info.value.plugin == module
    assert str(info.value) == (
        f"error importing project plugin {module!r} (listed in confs.plugins): "
        "ZeroDivisionError: division by zero"
    )
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_a_project_plugin_that_does_not_exist(project: Path, module_name: ModuleName) -> None:
    module = module_name("absent")
    with pytest.raises(PluginError) as info:
        make_plugin_manager([module], project, installed=False)
    assert info.value.plugin == module
    assert f"error importing project plugin {module!r}" in str(info.value)
    assert "ModuleNotFoundError" in str(info.value)


def test_a_plugin_implementing_an_unknown_hook(
    project: Path, write_module: WriteModule, module_name: ModuleName
) -> None:
    module = module_name("typo")
    write_module(
        project,
        module,
        """
        from normandy_core import hookimpl

        @hookimpl
        def normandy_proceses():
            return {}
    """,
    )
    with pytest.raises(PluginError) as info:
        make_plugin_manager([module], project, installed=False)
    assert info.value.plugin == module
    message = str(info.value)
    assert message.startswith(f"plugin {module!r} ({module}) is invalid")
    assert "normandy_proceses" in message


def test_an_invalid_object_plugin_is_not_kept() -> None:
    class Typo:
        @hookimpl
        def normandy_before_rnu(self, run: Any) -> None: ...

    class WrongArgument:
        @hookimpl
        def normandy_processes(self, config: Any) -> Any: ...

    pm = make_plugin_manager(installed=False)
    for plugin in (Typo(), WrongArgument()):
        name = type(plugin).__name__
        with pytest.raises(PluginError) as info:
            pm.register_plugin(plugin, PluginInfo(name, f"{name}-dist", "installed"))
        assert info.value.plugin == name
        assert f"{name}-dist" in str(info.value)
        assert pm.get_plugin(name) is None
        assert name not in pm.infos
    assert added(pm) == {}
    pm.check_pending()  # nothing of them is left behind


def test_hook_implementations_take_any_subset_of_the_arguments() -> None:
    seen: list[tuple[str, Any]] = []

    class Watcher:
        @hookimpl
        def normandy_before_process(self, task: Any) -> None:
            seen.append(("task", task))

        @hookimpl
        def normandy_after_run(self, summary: Any, run: Any) -> None:
            seen.append(("run+summary", (run, summary)))

    pm = make_plugin_manager(installed=False)
    pm.register_plugin(Watcher(), PluginInfo("watcher", "watch-dist", "installed"))
    list(pm.call_each("normandy_before_process", run="R", task="T"))
    list(pm.call_each("normandy_after_run", run="R", summary="S"))
    assert seen == [("task", "T"), ("run+summary", ("R", "S"))]
    # and through pluggy's own calling
    pm.hook.normandy_before_process(run="R", task="T2")
    assert seen[-1] == ("task", "T2")


def test_call_each_names_the_plugin_that_raises() -> None:
    class Failing:
        @hookimpl
        def normandy_before_run(self, run: Any) -> None:
            raise ValueError(f"cannot start {run}")

    pm = make_plugin_manager(installed=False)
    pm.register_plugin(Failing(), PluginInfo("failing", "fail-dist", "installed"))
    with pytest.raises(HookError) as info:
        list(pm.call_each("normandy_before_run", run="r1"))
    assert info.value.plugin == "failing"
    assert info.value.hook == "normandy_before_run"
    assert str(info.value) == (
        "plugin 'failing' failed in hook normandy_before_run: ValueError: cannot start r1"
    )


def test_each_manager_is_independent(
    project: Path, write_module: WriteModule, module_name: ModuleName
) -> None:
    module = module_name("plugin")
    processes_plugin(write_module, project, module, "extract")
    with_project = make_plugin_manager([module], project, installed=False)
    bare = make_plugin_manager(installed=False)
    assert bare is not with_project
    assert added(bare) == {}
    assert module not in bare.infos and bare.get_plugin(module) is None
    assert results(bare, "normandy_processes") == {}

    class Extra:
        @hookimpl
        def normandy_processes(self) -> Any:
            return {"extra": "pkg:extra"}

    bare.register_plugin(Extra(), PluginInfo("extra", "extra-dist", "installed"))
    assert set(results(bare, "normandy_processes")) == {"extra"}
    assert set(results(with_project, "normandy_processes")) == {module}
    again = make_plugin_manager(installed=False)
    assert added(again) == {} and results(again, "normandy_processes") == {}


# -- installed plugins (entry points) ---------------------------------------------------------


def test_installed_plugins_come_from_entry_points(
    fake_dist: Callable[..., Path], write_module: WriteModule, module_name: ModuleName
) -> None:
    module = module_name("installed")
    site = fake_dist("nd-fake-plugins", {"normandy.plugins": {"fake": module}})
    processes_plugin(write_module, site, module, "shipped")
    pm = make_plugin_manager()
    assert pm.infos["fake"] == PluginInfo("fake", "nd-fake-plugins", "installed")
    assert set(results(pm, "normandy_processes")["fake"]) == {"shipped", "shipped_str"}
    assert "fake" not in make_plugin_manager(installed=False).infos


def test_builtin_plugins_are_registered_like_any_other() -> None:
    pm = make_plugin_manager(installed=False)
    builtin = {name: info for name, info in pm.infos.items() if info.kind == "builtin"}
    assert all(info.source == "normandy" for info in builtin.values())
    executors: dict[str, Any] = {}
    for info, result in pm.call_each("normandy_executors"):
        if info.kind == "builtin":
            executors.update(result)
    # SPEC 7: local and serial come through normandy_executors like a plugin's engine
    assert {"local", "serial"} <= set(executors)


def test_the_dask_executor_is_an_installed_plugin_of_normandy_itself() -> None:
    """Offered through an entry point of Normandy's own distribution (group
    normandy.plugins), the path any third party's engine takes."""
    pm = make_plugin_manager()
    assert pm.infos["dask"] == PluginInfo("dask", "normandy", "installed")
    offered = {name for info, result in pm.call_each("normandy_executors") for name in result}
    assert "dask" in offered
    assert "dask" not in available_executors(make_plugin_manager(installed=False))


def test_an_installed_plugin_that_fails_to_import(
    fake_dist: Callable[..., Path], write_module: WriteModule, module_name: ModuleName
) -> None:
    module = module_name("installed_broken")
    site = fake_dist("nd-broken-dist", {"normandy.plugins": {"broken": module}})
    write_module(site, module, "raise ImportError('needs a missing library')\n")
    with pytest.raises(PluginError) as info:
        make_plugin_manager()
    assert info.value.plugin == "broken"
    message = str(info.value)
    assert (
        f"error importing plugin 'broken' ({module}, from distribution nd-broken-dist)" in message
    )
    assert "ImportError: needs a missing library" in message
    assert "fix or uninstall nd-broken-dist" in message


# -- sys.path ---------------------------------------------------------------------------------


def test_add_project_paths(project: Path) -> None:
    (project / "src").mkdir()
    add_project_paths(project)
    assert set(sys.path[:2]) == {str(project), str(project / "src")}
    add_project_paths(project)
    assert sys.path.count(str(project)) == 1 and sys.path.count(str(project / "src")) == 1


def test_add_project_paths_without_src(project: Path) -> None:
    before = list(sys.path)
    add_project_paths(None)
    assert sys.path == before
    add_project_paths(project)
    assert sys.path[0] == str(project)
    assert str(project / "src") not in sys.path


# -- the hook specifications ------------------------------------------------------------------


HOOKS = {
    "normandy_processes": [],
    "normandy_executors": [],
    "normandy_before_run": ["run"],
    "normandy_after_run": ["run", "summary"],
    "normandy_before_process": ["run", "task"],
    "normandy_after_process": ["run", "task", "outcome"],
    "normandy_on_process_error": ["run", "task", "error"],
}


@pytest.mark.parametrize(("hook", "arguments"), HOOKS.items(), ids=list(HOOKS))
def test_every_hook_of_the_spec_is_declared_and_documented(hook: str, arguments: list[str]) -> None:
    pm = make_plugin_manager(installed=False)
    caller = getattr(pm.hook, hook)
    assert caller.spec is not None, f"{hook} has no specification"
    assert list(caller.spec.argnames) == arguments
    doc = inspect.getdoc(caller.spec.function)
    assert doc and len(doc) > 40
    assert getattr(hookspecs, hook) is caller.spec.function


def test_no_other_hooks_are_declared() -> None:
    declared = {name for name in dir(hookspecs) if name.startswith("normandy_")}
    assert declared == set(HOOKS)


def test_markers_are_exported_for_the_project_normandy() -> None:
    assert isinstance(normandy_core.hookimpl, pluggy.HookimplMarker)
    assert isinstance(normandy_core.hookspec, pluggy.HookspecMarker)
    assert normandy_core.hookimpl.project_name == "normandy"
    assert normandy_core.hookspec.project_name == "normandy"
    assert make_plugin_manager(installed=False).project_name == "normandy"
