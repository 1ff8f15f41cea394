"""A past run's variables at hand, for notebooks and scripts (SPEC 12):
:func:`load` one, :func:`run_variables` to list those of a run (``normandy vars``).
:func:`load` loads a dataset of the project too (SPEC 16).

Where a variable lives is known from the history (which run and task wrote it, its type
and size: the lineage each attempt records) and the project's store
(``runs/<run>/vars/<flow>/<name>.nv``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from normandy_core.errors import VariableNotFoundError
from normandy_core.history import History
from normandy_core.store import SUFFIX, Place, check_name, read_value, store_root


@dataclass(frozen=True)
class StoredVariable:
    """A variable of a run: ``flow``, ``name``, the ``task`` (key) that wrote it, its
    value's ``type`` and its ``size`` in bytes (where the history knows them), and
    ``cached_from``: the run whose success the task reused, where it did (the variable
    was bound into this run from that one)."""

    run: str
    flow: str
    name: str
    task: str | None
    type: str | None
    size: int | None
    cached_from: str | None = None


def load(
    name: str,
    *,
    flow: str | None = None,
    run: str = "last",
    project: str | Path | None = None,
    env: str | None = None,
) -> Any:
    """The value of the variable ``name`` in a past run — or the data of the dataset
    ``name`` (``confs.datasets``).

    ``run``: a run id, or ``last`` — the latest run that wrote ``name`` (in ``flow``);
    ``flow`` is needed only where two flows of that run wrote the name; ``project``: its
    folder, by default the nearest project upward of the current folder. Raises
    :class:`~normandy_core.errors.VariableNotFoundError` saying what exists instead.

    A dataset is loaded as the ``env`` (by default the project's default env) declares
    it; for a versioned one, ``run`` names the version (``last``: the latest). Raises
    :class:`~normandy_core.errors.DatasetError` where it does not exist."""
    check_name(name)
    root, store, datasets = _project(project, "project=")
    if name in datasets:
        return _dataset(root, name, run, env)
    history = History(root / ".normandy")
    try:
        record = history.get(_run_of(history, name, flow) if run == "last" else run)
        _not_pruned(record, f"load({name!r})")
        run_id = record.id
        found = [v for v in _variables(history, store, run_id) if v.name == name]
    finally:
        history.close()
    if flow is not None:
        found = [v for v in found if v.flow == flow]
    if not found:
        where = f" in flow {flow!r}" if flow else ""
        raise VariableNotFoundError(
            f"run {run_id} has no variable {name!r}{where}; `normandy vars {run_id}` lists "
            "its variables"
        )
    if len(found) > 1:
        flows = ", ".join(v.flow for v in found)
        raise VariableNotFoundError(
            f"flows {flows} of run {run_id} all have a variable {name!r}: say which with "
            f"flow=… (load({name!r}, flow={found[0].flow!r}))"
        )
    path = _path(store, run_id, found[0].flow, name)
    if not path.exists():
        raise VariableNotFoundError(
            f"the value of {name!r} of run {run_id} is no longer stored (its run was pruned, "
            f"or {path} was removed); run the flow again"
        )
    return read_value(path)


def run_variables(run: str = "last", project: str | Path | None = None) -> list[StoredVariable]:
    """The variables of a run (``last``: the latest run), as stored now: flow by flow, by
    name."""
    root, store, _datasets = _project(project, "--project")
    history = History(root / ".normandy")
    try:
        record = history.get(run)
        _not_pruned(record, "normandy vars")
        return _variables(history, store, record.id)
    finally:
        history.close()


def _project(project: str | Path | None, option: str) -> tuple[Path, Place, frozenset[str]]:
    """The project's root, store and the names of its datasets; ``option``: how the
    caller names the project (``project=`` in Python, ``--project`` on the command line),
    for the message."""
    from normandy_core.config import read_config
    from normandy_core.errors import ProjectNotFoundError
    from normandy_core.roots import find_project_root

    try:
        root = find_project_root(Path(project) if project is not None else None)
    except ProjectNotFoundError as exc:
        if option == "--project":
            raise
        where = Path(project).resolve() if project is not None else Path.cwd()
        raise ProjectNotFoundError(
            f"no pipeline/pipeline_conf.yml in {where} or any folder above it: load() "
            "reads the runs of a project; call it from inside the project's folder, or "
            "name it, load(name, project='path/to/project')"
        ) from exc
    config, _problems = read_config(root)
    store = store_root(root, config.store if config is not None else None)
    return root, store, frozenset(config.datasets if config is not None else ())


def _dataset(root: Path, name: str, run: str, env: str | None) -> Any:
    from normandy_core.datasets._catalog import load_dataset, project_datasets
    from normandy_core.project import open_project

    _env, calls, _paths = project_datasets(open_project(root), env)
    return load_dataset(calls[name], None if run == "last" else run)


def _not_pruned(record: Any, what: str) -> None:
    """A :class:`VariableNotFoundError` for a run whose variables ``normandy gc`` deleted."""
    if record.pruned is None:
        return
    from datetime import datetime

    when = datetime.fromtimestamp(record.pruned).strftime("%Y-%m-%d %H:%M")
    raise VariableNotFoundError(
        f"run {record.id} was pruned on {when} (normandy gc, or confs.keep_runs): its "
        f"variables are no longer stored, so {what} cannot read them; run its flows again "
        "(`normandy runs` shows the runs whose variables are kept; keep more with "
        "confs.keep_runs or normandy gc --keep N)"
    )


def _run_of(history: History, name: str, flow: str | None) -> str:
    """The latest run not pruned in which a task that succeeded wrote ``name`` (in
    ``flow``); the latest pruned one, where only pruned runs wrote it (its message says so)."""
    found = history.last_writer(name, flow) or history.last_writer(name, flow, pruned=True)
    if found is not None:
        return found
    where = f" in flow {flow!r}" if flow else ""
    raise VariableNotFoundError(
        f"no recorded run wrote a variable {name!r}{where} (see `normandy vars last` for the "
        "variables of the latest run)"
    )


def _variables(history: History, store: Place, run_id: str) -> list[StoredVariable]:
    """What a run holds: the names in its folder of the store, described by what the
    history says wrote them."""
    described = {(w.flow, w.name): w for w in history.written(run_id)}
    found: list[StoredVariable] = []
    vars_dir = store / "runs" / run_id / "vars"
    flows = sorted({flow for flow, _ in described} | set(_folders(vars_dir)))
    for flow in flows:
        for file in (vars_dir / flow).names(SUFFIX):
            name = file[: -len(SUFFIX)]
            known = described.get((flow, name))
            found.append(
                StoredVariable(
                    run_id,
                    flow,
                    name,
                    known.task if known else None,
                    known.type if known else None,
                    known.size if known else None,
                    known.cached_from if known else None,
                )
            )
    return found


def _folders(place: Place) -> list[str]:
    from normandy_core.store import LocalPlace

    if isinstance(place, LocalPlace):
        return sorted(p.name for p in place.path.iterdir() if p.is_dir()) if place.is_dir() else []
    return []


def _path(store: Place, run_id: str, flow: str, name: str) -> Place:
    return store / "runs" / run_id / "vars" / flow / (name + SUFFIX)
