"""The data flow of a plan, checked before anything runs (SPEC 12).

Within a flow, a task's inputs — its parameters other than ``pipe``, ``log`` and
``params``, or the variables its entry maps them to, and the variables it declares it
reads (``inputs:`` as a list) — must be outputs declared by an earlier step. Every problem
is found at once and positioned at the entry that has it:

- an input that no earlier step of the flow outputs (*did you mean*, among the variables
  available there, and which task outputs each);
- an ``inputs`` key that is not a parameter of the process;
- a key path of params (``params.split_options.test_size``) that the task's params do
  not hold (*did you mean*, SPEC 20);
- a ``*``/``**`` parameter with nothing mapped to it while the entry lists inputs that
  no parameter takes; a list mapped to a ``**`` parameter, a mapping to a ``*`` one;
- a use of a template mapping a variable the template does not have;
- one output declared by two tasks of a step (they run at the same time: which one wins?).

A variable written only through ``pipe.vars`` is not known here: declare it in the
``outputs`` of the task that writes it (a process that returns nothing and writes its
declared outputs through ``pipe.vars`` fits its ``outputs``).

Inputs and outputs named like a dataset (``confs.datasets``) are not variables: their
checks are :mod:`normandy_core.datasets._checks`'.
A ``map`` entry reads the variable it maps over (made by an earlier step, like an input),
and gives each element to the parameter ``map_as`` names, which its process must have.
Under ``confs.schedule: dataflow`` (:func:`check_schedule`), a process may not read through
``pipe.vars`` a variable its entry does not declare: the reads its source shows are
checked here, the others refused by the worker as they happen.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from normandy_core.binding import (
    FromParams,
    Gathered,
    Signature,
    source_of,
    variables_of,
)
from normandy_core.config import Location
from normandy_core.dependencies import task_data
from normandy_core.errors import Problem, display_path
from normandy_core.params import KeyPathError, lookup
from normandy_core.plan import Flow, Plan, Task
from normandy_core.vars_reads import Read

SignatureOf = Callable[[str], "Signature | None"]
"""A process's signature by name; ``None`` where it is unknown (a problem of its own)."""


def check_data_flow(
    plan: Plan,
    signature_of: SignatureOf,
    available: Mapping[str, Mapping[str, str]] | None = None,
    datasets: Collection[str] = (),
) -> list[Problem]:
    """Every problem of the data flow of ``plan``'s flows. ``available``: per flow, the
    variables there before its first step (name -> what made them), for a partial run;
    ``datasets``: the names of the datasets, left to their own checks."""
    problems: dict[tuple[str, int, int, str], Problem] = {}
    for flow in plan.flows:
        made = dict((available or {}).get(flow.name, {}))
        for problem in _check_flow(flow, signature_of, made, frozenset(datasets)):
            problems.setdefault(
                (problem.file, problem.line, problem.column, problem.message), problem
            )
    return list(problems.values())


def outputs_of(task: Task) -> tuple[str, ...]:
    return task.outputs.names if task.outputs is not None else ()


def _check_flow(
    flow: Flow, signature_of: SignatureOf, made: dict[str, str], datasets: frozenset[str]
) -> list[Problem]:
    """``made``: variable -> the task (key) of an earlier step that outputs it."""
    problems: list[Problem] = []
    uses = _Uses()
    for step in flow.steps:
        in_step: dict[str, Task] = {}
        keys: set[str] = set()
        for task in step.tasks:
            if task.key in keys:  # a task name twice: the configuration's problem, not more
                continue
            keys.add(task.key)
            signature = signature_of(task.process)
            uses.seen(task, signature)
            if signature is not None:
                problems += _inputs(task, signature, made, flow.name, step.name, datasets)
            if task.map is not None and task.map.variable not in made:
                message = f"{task.name!r} maps over {task.map.variable!r}" + _missing(
                    task.map.variable, made, flow.name, step.name
                )
                problems.append(_at(task, "map", message))
            for variable in task.reads:
                if variable not in made and variable not in datasets:
                    message = f"{task.name!r} reads {variable!r} (inputs)" + _missing(
                        variable, made, flow.name, step.name
                    )
                    problems.append(_at(task, "inputs", message))
            for name in outputs_of(task):
                if name in datasets:
                    continue
                other = in_step.get(name)
                if other is None:
                    in_step[name] = task
                elif other.entry is task.entry:  # the tasks of one iter_param
                    problems.append(
                        _at(
                            task,
                            "outputs",
                            f"every task of this iter_param would write output {name!r}; "
                            "declare outputs on an entry that runs once, or write one "
                            "variable per value through pipe.vars",
                        )
                    )
                else:
                    problems.append(
                        _at(
                            task,
                            "outputs",
                            f"output {name!r} is also declared by {other.key}, in the same "
                            "step: tasks of a step run at once and cannot write one variable; "
                            "rename one of them",
                        )
                    )
        made.update({name: task.key for name, task in in_step.items()})
    return problems + uses.problems()


def _inputs(
    task: Task,
    signature: Signature,
    made: Mapping[str, str],
    flow: str,
    step: str,
    datasets: frozenset[str] = frozenset(),
) -> list[Problem]:
    problems = []
    given = task.map.param if task.map is not None else None
    if given is not None and signature.parameter(given) is None:
        names = ", ".join(p.name for p in signature.inputs) or "none but pipe, log, params"
        key = "map_as" if task.entry is not None and "map_as" in task.entry.places else "map"
        problems.append(
            _at(
                task,
                key,
                f"process {task.process!r} has no parameter {given!r} to get each element "
                f"of {task.map.variable!r} (its inputs: {names}); name one with map_as: "  # type: ignore[union-attr]
                "PARAMETER, or add the parameter",
            )
        )
    variadic = {signature.star, signature.star_star} - {""}
    for mapped in task.inputs:
        if signature.parameter(mapped) is None and mapped not in variadic:
            names = ", ".join(p.name for p in signature.inputs) or "none but pipe, log, params"
            hint = ""
            if signature.star_star:
                hint = (
                    f"; to give it to **{signature.star_star}: inputs: "
                    f"{{{signature.star_star}: {{{mapped}: VARIABLE}}}}"
                )
            problems.append(
                _at(
                    task,
                    f"inputs.{mapped}",
                    f"{mapped!r} is not a parameter of process {task.process!r} (its inputs: "
                    f"{names}); inputs maps a parameter of the process to the variable it "
                    f"gets{hint}",
                )
            )
    for param in signature.inputs:
        source = source_of(param.name, task.inputs, task.scope)
        if isinstance(source, str):
            if param.name == given or param.optional or source in made or source in datasets:
                continue
            via = f" (variable {source!r})" if source != param.name else ""
            message = (
                f"process {task.process!r} takes {param.name!r}{via}"
                + _missing(source, made, flow, step)
                + f", map {param.name!r} to another variable with inputs: "
                f"{{{param.name}: NAME}}, or give it a default"
            )
            key = f"inputs.{param.name}" if param.name in task.inputs else "inputs"
            problems.append(_at(task, key, message))
        else:
            problems += _source(task, param.name, source, made, flow, step)
    for name in sorted(variadic & set(task.inputs)):
        problems += _source(task, name, task.inputs[name], made, flow, step, signature)
    problems += _unbound(task, signature)
    return problems


def _source(
    task: Task,
    parameter: str,
    source: FromParams | Gathered | str,
    made: Mapping[str, str],
    flow: str,
    step: str,
    signature: Signature | None = None,
) -> list[Problem]:
    """The problems of what ``inputs`` maps ``parameter`` to, other than one variable by
    name (or of what it maps a ``*``/``**`` parameter to, with its ``signature``)."""
    key = f"inputs.{parameter}"
    star = signature is not None and parameter == signature.star
    star_star = signature is not None and parameter == signature.star_star
    if isinstance(source, FromParams):
        try:
            value = lookup(task.params, source.path)
        except KeyPathError as exc:
            return [_at(task, key, f"{source.describe()}: {exc.describe()}")]
        if star and not isinstance(value, (list, tuple)):
            return [_at(task, key, f"*{parameter} takes a list; {source.describe()} is not one")]
        if star_star and not isinstance(value, Mapping):
            return [
                _at(task, key, f"**{parameter} takes a mapping; {source.describe()} is not one")
            ]
        return []
    problems = []
    if star and isinstance(source, Gathered) and source.keys is not None:
        problems.append(
            _at(task, key, f"*{parameter} takes a list of variables ({parameter}: [A, B])")
        )
    if star_star and not (isinstance(source, Gathered) and source.keys is not None):
        problems.append(
            _at(
                task,
                key,
                f"**{parameter} takes keywords: a mapping of names to variables "
                f"({parameter}: {{name: VARIABLE}})",
            )
        )
    if star_star and isinstance(source, Gathered) and signature is not None:
        taken = {p.name for p in signature.inputs} | set(signature.reserved)
        for name in (k for k in source.keys or () if k in taken):
            problems.append(
                _at(
                    task,
                    key,
                    f"**{parameter} cannot take {name!r}: the process has a "
                    f"parameter {name!r} of its own; give it another keyword",
                )
            )
    for variable in variables_of(source):
        if variable not in made:
            message = f"process {task.process!r} takes {variable!r} in {parameter!r}" + _missing(
                variable, made, flow, step
            )
            problems.append(_at(task, key, message))
    return problems


def _unbound(task: Task, signature: Signature) -> list[Problem]:
    """A ``*`` parameter with nothing mapped to it, while the entry lists inputs
    (``inputs: [a, b]``) that no parameter takes: ``joiner(spine, *dfs)`` would get its
    ``spine`` alone (SPEC 20), so say how to map them. (A ``**`` parameter cannot be
    given what a list names; what a mapping names that no parameter takes is reported
    with the way to give it to the ``**`` parameter.)"""
    star = signature.star
    if not star or star in task.inputs:
        return []
    named = {p.name for p in signature.inputs}
    listed = [n for n in task.reads if n not in named]
    if not listed:
        return []
    names = ", ".join(listed)
    given = [f"{p.name}: {p.name}" for p in signature.inputs if p.name in task.reads]
    shown = ", ".join([*given, f"{star}: [{names}]"])
    message = (
        f"process {task.process!r} takes *{star}, to which nothing is mapped, and its entry "
        f"lists inputs that no parameter of it takes ({names}): a list of inputs only "
        f"declares variables read through pipe.vars, so *{star} would get nothing; give "
        f"them to *{star}: inputs: {{{shown}}} (or map {star}: [] where the process reads "
        "them itself through pipe.vars)"
    )
    return [_at(task, "inputs", message)]


class _Uses:
    """The uses of templates met in a flow, and the template variables their tasks
    read or write: a variable a use maps that none of them has is a problem (a typo
    would else leave the template's variable unmapped)."""

    def __init__(self) -> None:
        self.names: dict[int, set[str]] = {}
        self.entries: dict[int, Task] = {}
        self.unknown: set[int] = set()

    def seen(self, task: Task, signature: Signature | None) -> None:
        use = task.entry.use if task.entry is not None else None
        if use is None:
            return
        names = self.names.setdefault(id(use), set(use.variables))
        self.entries.setdefault(id(use), task)
        if signature is None:
            self.unknown.add(id(use))
            return
        names.update(p.name for p in signature.inputs if p.name not in task.inputs)

    def problems(self) -> list[Problem]:
        found = []
        for key, task in self.entries.items():
            use = task.entry.use if task.entry is not None else None
            if use is None or key in self.unknown:
                continue
            names = self.names[key]
            for place, where in use.places.items():
                tvar = place.partition(".")[2]
                if tvar in names:
                    continue
                close = difflib.get_close_matches(tvar, sorted(names), n=1)
                hint = f"did you mean {close[0]!r}? Its" if close else "its"
                found.append(
                    where.problem(
                        f"template {use.template!r} has no variable {tvar!r}; {hint} "
                        f"variables: {', '.join(sorted(names)) or 'none'}"
                    )
                )
        return found


def _missing(variable: str, made: Mapping[str, str], flow: str, step: str) -> str:
    """``, which no earlier step … outputs; did you mean …? Otherwise declare it …``: the
    caller may add more ways out (``, or …``)."""
    text = f", which no step of flow {flow!r} before {step!r} outputs"
    close = difflib.get_close_matches(variable, list(made), n=1)
    if close:  # a question ends its sentence: the ways out start another
        text += f"; did you mean {close[0]!r} (output by {made[close[0]]})? Otherwise"
    elif made:
        listed = ", ".join(f"{name} (by {key})" for name, key in list(made.items())[:8])
        more = f" and {len(made) - 8} more" if len(made) > 8 else ""
        text += f"; the variables output before it: {listed}{more};"
    else:
        text += " (no step before it declares outputs; a variable written through pipe.vars"
        text += " counts once declared in its task's outputs);"
    return text + f" declare {variable!r} in the outputs of the task that makes it"


def _at(task: Task, key: str, message: str) -> Problem:
    entry = task.entry
    where = entry.place(key) if entry is not None else None
    if where is None:
        where = Location("pipeline/pipeline_conf.yml", 1, 1, f"flows.{task.flow}")
    return where.problem(message)


def task_reads(task: Task, signature: Signature | None) -> tuple[str, ...]:
    """The variables ``task`` reads: its inputs' (by name, or as mapped; an optional
    input's too), those it declares it reads through ``pipe.vars``, and the one it maps
    over (see :func:`normandy_core.dependencies.task_data`)."""
    return task_data(task, signature).variables_read(task.flow)


ReadsOf = Callable[[str], "list[Read] | None"]
"""A process's ``pipe.vars`` reads as its source shows them (``None``: not known)."""


def check_schedule(plan: Plan, signature_of: SignatureOf, reads_of: ReadsOf) -> list[Problem]:
    """Under ``confs.schedule: dataflow``: every read through ``pipe.vars`` that a
    process's source shows is declared by its entry (a task starts once what it declares
    is written: an undeclared read could come first)."""
    problems: dict[tuple[str, int, int, str], Problem] = {}
    seen: dict[str, list[Read] | None] = {}
    for task in plan.tasks():
        if task.process not in seen:
            seen[task.process] = reads_of(task.process)
        found = seen[task.process]
        if not found:
            continue
        declared = set(task_reads(task, signature_of(task.process)))
        for read in found:
            if read.name in declared:
                continue
            problem = _at(
                task,
                "inputs",
                f"under confs.schedule: dataflow, process {task.process!r} reads "
                f"{read.name!r} through pipe.vars ({display_path(Path(read.file))}:{read.line}), "
                "which this entry "
                "does not declare: a task starts as soon as what it declares is written, so "
                f"it could read {read.name!r} before that; declare it (inputs: "
                f"[{read.name}]) or take it as a parameter",
            )
            where = (problem.file, problem.line, problem.column, problem.message)
            problems.setdefault(where, problem)
    return list(problems.values())


def data_of(
    plan: Plan, signature_of: SignatureOf
) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Each task's declared data, by key: ``(the variables it reads, those it outputs)``,
    for pictures of the flows."""
    return {
        task.key: (task_reads(task, signature_of(task.process)), outputs_of(task))
        for task in plan.tasks()
    }
