"""The datasets of a project as they are now, for people (``normandy datasets``) and for
notebooks (:func:`load_dataset`, behind ``normandy_core.load``): each one's type, path
with the env applied, latest version, size, and the run and task that last wrote it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from normandy_core.datasets._runtime import DatasetCall, open_dataset, versions_of
from normandy_core.errors import DatasetError


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset now: ``path`` as declared with the env applied; ``location``, the file
    it stands for (absolute, or a URL; for a versioned dataset its latest version's);
    ``exists`` (``None``: it cannot be told, ``problem`` says why); its ``size`` in bytes
    and modification time where the store tells them; the run and task that last wrote
    it (``written_run``, ``written_task``, ``written_at``), from the history."""

    name: str
    type: str
    path: str | None
    location: str | None
    versioned: bool = False
    version: str | None = None
    exists: bool | None = None
    size: int | None = None
    modified: float | None = None
    written_run: str | None = None
    written_task: str | None = None
    written_at: float | None = None
    problem: str | None = None


def project_datasets(
    project: Any, env: str | None = None
) -> tuple[str, dict[str, DatasetCall], dict[str, str | None]]:
    """The env used, the datasets of ``project`` (a
    :class:`~normandy_core.project.Project`) with it applied, checked
    (:class:`~normandy_core.errors.ConfigError` with every problem), and each one's path
    as declared (the env's override applied)."""
    from normandy_core.project import check_project

    checked = check_project(project, [], env, signatures=False)
    calls = dict(checked.datasets.calls) if checked.datasets else {}
    specs = project.config.dataset_specs(checked.env, checked.settings)
    return checked.env, calls, {name: spec.path for name, spec in specs.items()}


def describe_datasets(
    root: Path, calls: dict[str, DatasetCall], specs_paths: dict[str, str | None]
) -> list[DatasetInfo]:
    """What each dataset is now (``specs_paths``: each one's path as declared)."""
    from normandy_core.history import History

    history = History(root / ".normandy")
    try:
        written = history.dataset_writes(list(calls))
    finally:
        history.close()
    found = []
    for name, call in calls.items():
        info = _now(call, specs_paths.get(name))
        here = [w for w in written.get(name, ()) if _same_place(w.location, call)]
        last = here[-1] if here else None
        if last is not None:
            info = replace(
                info, written_run=last.run_id, written_task=last.key, written_at=last.ended
            )
        found.append(info)
    return found


def _same_place(location: str | None, call: DatasetCall) -> bool:
    """Whether a write's location is this dataset's (the env's path; for a versioned
    dataset, one of its versions): a write of another env's path is not its own."""
    path = call.config.path
    if path is None:  # a table: where the type's description says
        return True
    if call.versioned:
        return location is not None and location.startswith(path.rstrip("/") + "/")
    return location == path


def _now(call: DatasetCall, path: str | None) -> DatasetInfo:
    info = DatasetInfo(call.name, call.type, path, call.config.path, call.versioned)
    try:
        version = versions_of(call).latest() if call.versioned else None
        if call.versioned and version is None:
            return replace(info, exists=False)
        dataset = open_dataset(call, version)
        stamp = dataset.stamp()
    except (OSError, ImportError, ValueError, DatasetError) as exc:
        return replace(info, problem=f"{type(exc).__name__}: {exc}")
    location = str(dataset.path) if dataset.path else info.location
    if stamp is None:
        return replace(info, location=location, version=version, exists=False)
    return replace(
        info,
        location=location,
        version=version,
        exists=True,
        size=stamp.size,
        modified=stamp.mtime,
    )


def load_dataset(call: DatasetCall, version: str | None = None) -> Any:
    """The data of a dataset (of one ``version``, a run id, for a versioned one: by
    default the latest); :class:`DatasetError` where there is none."""
    if version is not None and not call.versioned:
        raise DatasetError(
            f"the dataset {call.name!r} is not versioned: it has only its current content "
            "(load it without run=…)"
        )
    if call.versioned:
        versions = versions_of(call)
        chosen = version or versions.latest()
        if chosen is None or not versions.has(chosen):
            known = ", ".join(versions.all()[-5:]) or "none yet"
            what = f"no version {version!r}" if version else "no version yet"
            raise DatasetError(
                f"the dataset {call.name!r} ({call.describe()}) has {what} (its latest "
                f"versions: {known})"
            )
        version = chosen
    dataset = open_dataset(call, version)
    if not dataset.loads:
        raise DatasetError(f"the dataset {call.name!r} ({call.type}) is written, not read")
    if dataset.stamp() is None:
        raise DatasetError(
            f"the dataset {call.name!r} ({call.describe()}) does not exist: run the flow "
            "that writes it"
        )
    return dataset.load()
