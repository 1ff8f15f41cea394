"""The datasets a process run by ``run_process`` reads: an input named like a dataset of
the project under test (``confs.datasets``, its env's overrides applied) is loaded from
it, as a run would, unless the test gives it (``inputs=``). Outputs named like datasets
are kept as the result's outputs, never written: a test does not change the project's
files."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from normandy_core.errors import ConfigError


def dataset_inputs(
    project: Any,
    name: str,
    inputs: Mapping[str, Any],
    given: Mapping[str, Any],
    env: str,
    settings: Mapping[str, Any],
    credentials: Mapping[str, Any],
) -> tuple[Any, ...]:
    """The :class:`~normandy_core.datasets._runtime.DatasetCall` of each input of the
    process ``name`` that is a dataset of ``project`` and is not ``given``; ``inputs``:
    its entry's mapping of parameters to names."""
    if project is None or not project.config.datasets:
        return ()
    specs = project.config.dataset_specs(env, settings)
    signature = project.registry.signature(name, load=True)
    from normandy_core.binding import variables_of

    named = [inputs.get(p.name, p.name) for p in signature.inputs]  # a source (SPEC 20)
    wanted = {
        variable: specs[variable]
        for source in named
        for variable in variables_of(source)
        if variable in specs and variable not in given
    }
    if not wanted:
        return ()
    from normandy_core.datasets._declarations import check_declarations
    from normandy_core.datasets._runtime import dataset_call

    root = str(project.root)
    declared, problems = check_declarations(wanted, root, credentials)
    if problems:
        raise ConfigError(problems)
    return tuple(
        dataset_call(d.spec, d.dataset_type, root, credentials) for d in declared.values()
    )
