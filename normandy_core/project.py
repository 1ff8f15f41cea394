"""A project: its root, configuration, plugins and registry, and the checks before a run.

This is the one place that ties config, plugins and registry together for the commands:

    open_project()  ->  Project  (config read, plugins loaded, processes listed)
    check_project() ->  Checked  (names, signatures, env, credentials: all problems at once)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from normandy_core.config import (
    ProjectConfig,
    check_engine_sections,
    check_executor,
    check_processes,
    check_store,
    checkable,
    env_settings,
    load_credentials,
    read_config,
    select_env,
)
from normandy_core.config._notify import check_credentials, check_plugin
from normandy_core.errors import (
    ConfigError,
    PluginError,
    Problem,
    ProcessLoadError,
)
from normandy_core.package_file import read_declared_processes
from normandy_core.plugins import (
    PluginManager,
    add_project_paths,
    available_executors,
    make_plugin_manager,
)
from normandy_core.registry import Registry, build_registry
from normandy_core.roots import find_project_root

if TYPE_CHECKING:
    from normandy_core._import_check import ImportChecks
    from normandy_core.binding import Signature
    from normandy_core.datasets._runtime import RunDatasets
    from normandy_core.plan import Plan
    from normandy_core.vars_reads import Read


@dataclass
class Project:
    """A loaded project. ``problems`` holds what reading it found, not yet reported."""

    root: Path
    config: ProjectConfig
    plugins: PluginManager
    registry: Registry
    problems: list[Problem] = field(default_factory=list)

    def raise_problems(self, extra: Iterable[Problem] = ()) -> None:
        """Raise one :class:`ConfigError` with every problem found so far, if any."""
        problems = [*self.problems, *extra]
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class Checked:
    """What a run needs once the project has passed every check."""

    env: str
    settings: Mapping[str, Any]
    credentials: Mapping[str, Any]
    datasets: RunDatasets | None = None
    """The datasets (``confs.datasets``, env applied) and which each task of the plan
    reads and writes; ``None`` where the project declares none."""


def open_project(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Project:
    """Find and read the project, load its plugins and list its processes: those of the
    installed packages and plugins, of the project's own ``setup.cfg``/``pyproject.toml``
    entry points, and of ``confs.processes`` (never importing a process module).

    Raises :class:`ConfigError` when the file cannot be parsed or a project plugin cannot
    be imported, :class:`PluginError` for an installed plugin; schema problems are kept in
    ``Project.problems`` so that later checks can report them all together.
    """
    root = find_project_root(start)
    config, problems = read_config(root, environ)
    if config is None:
        raise ConfigError(problems)
    try:
        plugins = make_plugin_manager(config.plugins, root)
    except PluginError as exc:
        if exc.plugin in config.plugins:
            where = config.where(f"confs.plugins[{config.plugins.index(exc.plugin)}]")
            raise ConfigError([*problems, where.problem(str(exc))]) from exc
        raise
    if config.engine_sections:
        problems += check_engine_sections(config, available_executors(plugins))
    declared, more = read_declared_processes(root)
    problems += more
    if declared is not None or config.processes:
        # where checks import them, the project's modules come from its own folders
        # (as in the workers), before any installed copy
        add_project_paths(root)
    registry = build_registry(plugins, declared, config.processes)
    return Project(root, config, plugins, registry, problems)


def signature_or_none(
    registry: Registry, name: str, imported: ImportChecks | None = None
) -> Signature | None:
    """``name``'s signature, or ``None`` where it has a problem of its own (unknown, a
    clash, cannot be imported), reported by the process checks. ``imported``: the checks
    importing the modules elsewhere, asked where the source does not tell for certain."""
    if name not in registry or registry.clash(name) is not None:
        return None
    try:
        if imported is not None:
            from normandy_core.signatures import static_signature

            found = static_signature(registry.get(name).target, name, imported.files)
            return found if found is not None else imported.signature(name)
        return registry.signature(name)
    except ProcessLoadError:
        return None


def _reads(project: Project, name: str) -> list[Read] | None:
    """The ``pipe.vars`` reads the source of process ``name`` shows, where it can be read."""
    registry = project.registry
    if name not in registry or registry.clash(name) is not None:
        return None
    from normandy_core.vars_reads import static_reads

    return static_reads(registry.get(name).target)


def credentials_mask(
    project: Project, envs: Iterable[str | None] = (None,), environ: Mapping[str, str] | None = None
) -> Callable[[str], str]:
    """What masks the credential values of ``envs`` (``None``: the env a command uses by
    default) in a text, for the names Normandy shows before a run's checks (a task named
    by an ``iter_param`` value). Read quietly: a credentials file that cannot be read masks
    nothing here, and :func:`check_project` reports it."""
    from normandy_core.masking import Masker, secret_values

    environ = os.environ if environ is None else environ
    secrets: list[str] = []
    for env in envs:
        name, problems = select_env(project.config, env)
        if name is not None and not problems:
            credentials, _ = load_credentials(project.config, name, environ)
            secrets += secret_values(credentials)
    return Masker(secrets) if secrets else _unmasked


def _unmasked(text: str) -> str:
    return text


def check_project(
    project: Project,
    flows: Iterable[str] | None = None,
    env: str | None = None,
    *,
    signatures: bool = True,
    imports: bool = True,
    plan: Plan | None = None,
    available: Mapping[str, Mapping[str, str]] | None = None,
    extra: Iterable[Problem] = (),
    check_env: bool = True,
    executor: str | None = None,
    environ: Mapping[str, str] | None = None,
    load_versions: Mapping[str, str] | None = None,
) -> Checked:
    """Check ``flows`` (all when ``None``) and the env, raising one :class:`ConfigError`
    with every problem: the file's, unknown processes, processes that cannot be called
    (with ``signatures``; importing them with ``imports``, else reading their source
    where that is certain), the data flow of ``plan`` (SPEC 12), an unknown or unusable
    executor (``executor``, else ``confs.executor``), a store this machine cannot open
    and, with ``check_env``, an unknown env, its settings and its credentials.
    ``available``: per flow, the variables there before its first step (a partial run's,
    taken from earlier runs); ``extra``: problems found by the caller. The datasets
    (SPEC 16) are checked too: their declarations, their use by ``plan`` (with
    ``check_env``, that the datasets it reads exist) and ``load_versions``
    (``--load-version``)."""
    environ = os.environ if environ is None else environ
    config = project.config
    imported = None
    if signatures and imports:  # the modules import in child processes meanwhile
        from normandy_core._import_check import ImportChecks

        imported = ImportChecks(project.registry, checkable(config, project.registry, flows))
    problems: list[Problem] = []
    known: dict[str, Signature | None] = {}  # per process, not per task (10,000 of them)

    def signature(name: str) -> Signature | None:
        if name not in known:
            known[name] = signature_or_none(project.registry, name, imported)
        return known[name]

    if plan is not None:
        from normandy_core.dataflow import check_data_flow

        problems += check_data_flow(plan, signature, available, config.datasets)
        if config.schedule == "dataflow":
            from normandy_core.dataflow import check_schedule

            problems += check_schedule(plan, signature, lambda name: _reads(project, name))
    problems += list(extra)
    if signatures:
        name = executor or config.executor
        problems += check_executor(
            config,
            name,
            available_executors(project.plugins),
            from_command_line=executor is not None,
        )
        problems += check_store(config)
    problems[:0] = check_processes(
        config, project.registry, flows, signatures=signatures, imports=imports, imported=imported
    )
    env_name, env_problems = select_env(config, env)
    problems += env_problems
    settings: dict[str, Any] = {}
    credentials: dict[str, Any] = {}
    if env_name is not None and check_env:
        settings, more = env_settings(config, env_name, environ)
        problems += more
        credentials, more = load_credentials(config, env_name, environ)
        problems += more
        if not more:
            problems += check_credentials(
                config.confs.get("notify"), env_name, credentials, config.locations
            )
    problems += check_plugin(
        config.confs.get("notify"),
        config.where("confs.notify"),
        (info.source for info in project.plugins.infos.values()),
    )
    datasets = None
    if config.datasets:  # nothing of datasets is imported for a project without any
        from normandy_core.datasets._checks import check_datasets

        specs = config.dataset_specs(env_name if check_env else None, settings)
        datasets, more = check_datasets(
            specs,
            str(project.root),
            plan,
            signature,
            credentials=credentials if check_env else None,
            exists=check_env,
            load_versions=load_versions,
            where=config.where("confs.datasets"),
        )
        problems += more
    project.raise_problems(problems)
    assert env_name is not None  # the schema requires at least one env
    return Checked(env_name, settings, credentials, datasets)
