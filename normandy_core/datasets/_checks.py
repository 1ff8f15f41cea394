"""Datasets checked before anything runs (SPEC 16), every problem at once, positioned:

- each declaration (:mod:`._declarations`): its type, its keys, its credentials;
- their use by the flows: an input dataset that does not exist and that no earlier step
  writes, one read in the step that writes it, two tasks of a step writing one, a
  dataset read through ``pipe.vars`` (``inputs:`` as a list: a variable of that name), a
  type that cannot be read (or written) used so;
- ``--load-version NAME=RUN_ID``: an unknown or unversioned dataset, a version that does
  not exist, a dataset the run itself writes.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping

from normandy_core.binding import Signature
from normandy_core.config import DatasetSpec, Location
from normandy_core.datasets._declarations import Declared, check_declarations
from normandy_core.datasets._runtime import (
    DatasetCall,
    RunDatasets,
    Use,
    dataset_call,
    open_dataset,
    versions_of,
)
from normandy_core.errors import DatasetError, Problem
from normandy_core.plan import Plan, Task

SignatureOf = Callable[[str], "Signature | None"]


def check_use(
    plan: Plan,
    declared: Mapping[str, Declared],
    names: frozenset[str],
    signature_of: SignatureOf,
    exists: Callable[[str], bool | str] | None = None,
) -> tuple[dict[str, Use], list[Problem]]:
    """Which datasets each task of ``plan`` reads and writes, and every problem of that
    use. ``names``: every dataset declared (some may have no known type); ``exists``:
    whether a dataset exists now, or why that cannot be told (``None``: not checked)."""
    use: dict[str, Use] = {}
    problems: list[Problem] = []
    written: dict[str, str] = {}  # dataset -> the task of an earlier step that writes it
    later = _writers(plan.whole or tuple(plan.tasks()), names)
    kept = {task.key for task in plan.tasks()}
    for flow in plan.flows:
        for step in flow.steps:
            in_step: dict[str, Task] = {}
            reading: list[tuple[Task, str, str]] = []
            for task in step.tasks:
                signature = signature_of(task.process)
                reads = _reads(task, signature, names)
                writes = tuple(n for n in _outputs(task) if n in names)
                if reads or writes:
                    use[task.key] = (tuple(r for r, _, _ in reads), writes)
                for name in task.reads:
                    if name in names:
                        problems.append(_at(task, "inputs", _through_vars(name)))
                for name in writes:
                    problems += _write(task, name, declared.get(name), in_step)
                for name, param, optional in reads:
                    unreadable = _read(task, name, param, declared.get(name))
                    problems += unreadable
                    if not optional and not unreadable:
                        reading.append((task, name, param))
            for task, name, param in reading:
                writer = in_step.get(name)
                if writer is not None and writer is not task:
                    problems.append(_at(task, _key(task, param), _same_step(name, writer)))
                elif name not in written and exists is not None:
                    there = exists(name)
                    if there is True:
                        continue
                    writer = later.get(name)
                    runs = writer is not None and writer.key in kept
                    message = (
                        _missing(name, param, declared.get(name), writer, runs)
                        if there is False
                        else f"cannot tell whether the dataset {name!r} exists: {there}"
                    )
                    problems.append(_at(task, _key(task, param), message))
            written.update({name: t.key for name, t in in_step.items()})
    return use, problems


def _reads(
    task: Task, signature: Signature | None, names: frozenset[str]
) -> list[tuple[str, str, bool]]:
    """``(dataset, parameter, optional)`` of each input of ``task`` that is a dataset."""
    if signature is None:
        return []
    found = []
    for param in signature.inputs:
        variable = task.inputs.get(param.name, param.name)
        if variable in names:
            found.append((variable, param.name, param.optional))
    return found


def _outputs(task: Task) -> tuple[str, ...]:
    return task.outputs.names if task.outputs is not None else ()


def _writers(tasks: tuple[Task, ...], names: frozenset[str]) -> dict[str, Task]:
    found: dict[str, Task] = {}
    for task in tasks:
        for name in _outputs(task):
            if name in names:
                found.setdefault(name, task)
    return found


def _write(
    task: Task, name: str, declared: Declared | None, in_step: dict[str, Task]
) -> list[Problem]:
    problems = []
    if declared is not None and not declared.cls.saves:
        problems.append(
            _at(task, "outputs", f"output {name!r} is a dataset that cannot be written "
                f"({declared.spec.type}): output another name")
        )
    other = in_step.get(name)
    if other is None:
        in_step[name] = task
    elif other.entry is task.entry:
        problems.append(
            _at(
                task,
                "outputs",
                f"every task of this iter_param would write the dataset {name!r}; declare "
                "the output on an entry that runs once, or one dataset per value",
            )
        )
    else:
        problems.append(
            _at(
                task,
                "outputs",
                f"the dataset {name!r} is also written by {other.key}, in the same step: "
                "tasks of a step run at once and cannot write one dataset; write it in one "
                "of them",
            )
        )
    return problems


def _read(task: Task, name: str, param: str, declared: Declared | None) -> list[Problem]:
    if declared is None or declared.cls.loads:
        return []
    return [
        _at(
            task,
            _key(task, param),
            f"input {param!r} is the dataset {name!r}, which cannot be read "
            f"({declared.spec.type}: it is written, not read); read its data from a variable",
        )
    ]


def _through_vars(name: str) -> str:
    return (
        f"{name!r} is a dataset, not a variable: a process reads a dataset through a "
        f"parameter of that name (or inputs: {{parameter: {name}}}), not pipe.vars; "
        "remove it from this list"
    )


def _same_step(name: str, writer: Task) -> str:
    return (
        f"it reads the dataset {name!r}, which {writer.key} writes in the same step: tasks "
        "of a step run at once, so it would read the old content; move one of them to "
        "another step"
    )


def _missing(
    name: str, param: str, declared: Declared | None, writer: Task | None, runs: bool | None
) -> str:
    what = f"{declared.spec.type} {declared.spec.path or ''}".rstrip() if declared else "?"
    via = f" as its input {param!r}" if param != name else ""
    text = f"it reads the dataset {name!r}{via} ({what}), which does not exist"
    if declared is not None and declared.spec.versioned:
        text += " (no version of it)"
    if writer is None:
        return text + " and which no step writes; create it, or declare it in the outputs " \
            "of a task of an earlier step"
    if runs:
        return text + f"; {writer.key} writes it, but not in an earlier step: move it earlier"
    return (
        text + f"; {writer.key} writes it, but does not run in this part of the flows: run "
        f"it first, or start earlier (--from {writer.step})"
    )


def _key(task: Task, param: str) -> str:
    return f"inputs.{param}" if param in task.inputs else "inputs"


def _at(task: Task, key: str, message: str) -> Problem:
    entry = task.entry
    where = entry.place(key) if entry is not None else None
    if where is None:
        where = Location("pipeline/pipeline_conf.yml", 1, 1, f"flows.{task.flow}")
    return where.problem(message)


def check_load_versions(
    declared: Mapping[str, Declared],
    specs: Mapping[str, DatasetSpec],
    asked: Mapping[str, str],
    use: Mapping[str, Use],
    root: str,
    credentials: Mapping[str, object] | None,
    where: Location,
) -> list[Problem]:
    """Problems of ``--load-version NAME=RUN_ID`` (``asked``), each at the dataset's
    declaration (at ``confs.datasets``, ``where``, for a name that is none)."""
    problems = []
    written = {name for _, writes in use.values() for name in writes}
    versioned = sorted(n for n, s in specs.items() if s.versioned)
    for name, version in asked.items():
        flag = f"--load-version {name}={version}"
        spec = specs.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, versioned or list(specs), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            listed = ", ".join(versioned) or "none"
            problems.append(
                where.problem(
                    f"{flag}: no dataset {name!r}; {hint}the versioned datasets: {listed}"
                )
            )
        elif not spec.versioned:
            problems.append(
                spec.where.problem(
                    f"{flag}: the dataset {name!r} is not versioned (versioned: true)"
                )
            )
        elif name in written:
            writer = next(k for k, (_, w) in use.items() if name in w)
            problems.append(
                spec.where.problem(
                    f"{flag}: this run writes {name!r} ({writer}); --load-version is for "
                    "datasets a run reads and does not write"
                )
            )
        elif name in declared:
            call = dataset_call(spec, declared[name].dataset_type, root, credentials)
            versions = versions_of(call).all()
            if version not in versions:
                shown = ", ".join(versions[-5:]) or "none yet"
                problems.append(
                    spec.where.problem(
                        f"{flag}: {name!r} has no version {version!r} (its latest versions: "
                        f"{shown})"
                    )
                )
    return problems


def run_datasets(
    declared: Mapping[str, Declared],
    use: Mapping[str, Use],
    root: str,
    credentials: Mapping[str, object] | None,
    load_versions: Mapping[str, str] | None = None,
) -> RunDatasets:
    """The datasets of a run, ready for its tasks' calls."""
    calls: dict[str, DatasetCall] = {
        name: dataset_call(
            d.spec, d.dataset_type, root, credentials, (load_versions or {}).get(name)
        )
        for name, d in declared.items()
    }
    return RunDatasets(calls, use)


def exists_now(
    declared: Mapping[str, Declared], root: str, credentials: Mapping[str, object] | None
) -> Callable[[str], bool | str]:
    """``exists(name)``: whether a declared dataset (a version of it, if versioned) is
    there now, or why that cannot be told (its store cannot be reached, a package its
    URL needs is missing); looked up once."""
    known: dict[str, bool | str] = {}

    def exists(name: str) -> bool | str:
        if name not in known:
            d = declared.get(name)
            if d is None:
                known[name] = True
            else:
                call = dataset_call(d.spec, d.dataset_type, root, credentials)
                known[name] = _exists(call)
        return known[name]

    return exists


def _exists(call: DatasetCall) -> bool | str:
    try:
        if call.versioned:
            return versions_of(call).latest() is not None
        return open_dataset(call).exists()
    except (OSError, ImportError, ValueError, DatasetError) as exc:
        return f"{type(exc).__name__}: {exc}"


def check_datasets(
    specs: Mapping[str, DatasetSpec],
    root: str,
    plan: Plan | None,
    signature_of: SignatureOf,
    *,
    credentials: Mapping[str, object] | None = None,
    exists: bool = True,
    load_versions: Mapping[str, str] | None = None,
    where: Location,
) -> tuple[RunDatasets, list[Problem]]:
    """Every problem of the datasets ``specs`` (env applied) and of their use by ``plan``;
    and the run's datasets, ready for its tasks. ``credentials``: the env's (``None``:
    the env is not checked); ``exists``: check that input datasets exist;
    ``load_versions``: ``--load-version`` (NAME -> RUN_ID); ``where``: the position of
    ``confs.datasets``."""
    declared, problems = check_declarations(specs, root, credentials)
    use: dict[str, Use] = {}
    if plan is not None:
        found = exists_now(declared, root, credentials) if exists else None
        use, more = check_use(plan, declared, frozenset(specs), signature_of, found)
        problems += more
    if load_versions:
        problems += check_load_versions(
            declared, specs, load_versions, use, root, credentials, where
        )
    unique = list({(p.file, p.line, p.column, p.message): p for p in problems}.values())
    return run_datasets(declared, use, root, credentials, load_versions), unique
