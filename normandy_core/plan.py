"""The plan: which flows, steps and tasks a command would run. Pure data, no I/O.

``build_plan`` turns a configuration and a selection (tags, flows, ``--param`` values) into
a :class:`Plan`: flows in file order, each an ordered tuple of steps, each a tuple of tasks
that may run in parallel. ``iter_param`` is expanded here, params are merged here (flow
params, under the entry's, under the env's, under ``--param``: SPEC 20), and
``avoid_tags`` is applied here, so everything downstream only executes. (Templates are
expanded earlier, as the configuration is read: a plan only sees their steps.)

A ``map`` entry is one task here (its :attr:`Task.map` says over what): its elements are
known only once the variable it maps over is written, and become tasks of their own then
(:func:`element_task`, each with its :class:`Element`).
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from normandy_core.binding import Outputs, Scope, Source, describe_source
from normandy_core.config import FlowConfig, MapSpec, ProcessEntry, ProjectConfig, select_env
from normandy_core.errors import SelectionError
from normandy_core.params import KeyPathError, lookup, merge_deep, set_path, split_path

DEFAULT_TAG = "default"
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Element:
    """What one task of a ``map`` gets: an element of the variable mapped over."""

    parent: str
    """The key of the mapped task (``flow.step.task``)."""
    variable: str
    key: str
    """The element's name in its task's (``task[KEY]``): its value, or its position."""
    position: int
    value: Any = field(compare=False, repr=False)
    hash: str = ""
    """The content hash of the element alone: what its task's fingerprint holds."""
    size: int = 0

    @property
    def read(self) -> str:
        """The element as its task's fingerprint names what it read: ``VARIABLE[KEY]``."""
        return f"{self.variable}[{self.key}]"


@dataclass(frozen=True, slots=True)
class Task:
    """One call of one process: the unit that is scheduled, retried and recorded."""

    flow: str
    step: str
    name: str
    """The entry's name (its key in the step: the process, or a name of its own with
    ``process:``); ``name[value]`` for a task of an ``iter_param``."""
    process: str
    params: Mapping[str, Any]
    error_tolerance: bool = False
    retries: int = 0
    retry_delay: float = 0.0
    timeout: float | None = None
    inputs: Mapping[str, Source] = field(default_factory=lambda: _EMPTY)
    """Parameter -> what it gets, where the entry maps something (``inputs:``): a
    variable, params or one of them, several variables."""
    reads: tuple[str, ...] = ()
    """Variables declared read through ``pipe.vars`` (``inputs:`` as a list)."""
    outputs: Outputs | None = None
    cache: bool = False
    """Whether an earlier success whose fingerprint is unchanged may stand for it."""
    entry: ProcessEntry | None = field(default=None, compare=False)
    """The configuration's entry it comes from (its positions, for messages)."""
    pools: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    """Units of ``confs.pools`` it holds while it runs (SPEC 19)."""
    map: MapSpec | None = None
    """A mapped task: run as one task per element of ``map.variable``, at run time."""
    element: Element | None = None
    """A task of a ``map``: the element it gets."""
    scope: Scope | None = None
    """A template's task: where its variables are (see :class:`~normandy_core.binding.Scope`)."""
    key: str = field(init=False, repr=False, compare=False)
    """``flow.step.task``: unique within a run (made once: a run reads it dozens of times
    per task)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.flow}.{self.step}.{self.name}")


@dataclass(frozen=True, slots=True)
class Step:
    flow: str
    name: str
    tasks: tuple[Task, ...]
    skipped: tuple[str, ...] = ()
    """Processes of this step left out by ``avoid_tags``."""


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    tags: tuple[str, ...]
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Selection:
    """What the command line asked for."""

    tags: tuple[str, ...] = ()
    flows: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    part: tuple[tuple[str, str], ...] = ()
    """A partial run's patterns, as given: ``(("--from", "three"), ("--only", "f.x.y"))``."""

    @property
    def effective_tags(self) -> tuple[str, ...]:
        """The tags that select flows (``default`` when none is given and no flow is named)."""
        return self.tags or (() if self.flows else (DEFAULT_TAG,))


@dataclass(frozen=True)
class Plan:
    flows: tuple[Flow, ...]
    selection: Selection
    whole: tuple[Task, ...] = ()
    """For part of a plan (``--from``, ``--to``, ``--only``): every task of the whole of
    it, in order (those left out may have made what the others read)."""

    def tasks(self) -> Iterator[Task]:
        for flow in self.flows:
            for step in flow.steps:
                yield from step.tasks

    def __len__(self) -> int:
        return sum(len(step.tasks) for flow in self.flows for step in flow.steps)

    def processes(self) -> set[str]:
        """The process names this plan calls."""
        return {task.process for task in self.tasks()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (used by ``--dry-run --json``, ``graph`` and history)."""
        return {
            "selection": {
                "tags": list(self.selection.tags),
                "flows": list(self.selection.flows),
                "params": dict(self.selection.params),
                **({"part": [list(p) for p in self.selection.part]} if self.selection.part else {}),
            },
            "flows": [
                {
                    "name": flow.name,
                    "tags": list(flow.tags),
                    "steps": [
                        {
                            "name": step.name,
                            "skipped": list(step.skipped),
                            "tasks": [_task_dict(task) for task in step.tasks],
                        }
                        for step in flow.steps
                    ],
                }
                for flow in self.flows
            ],
        }

    def fingerprint(self) -> str:
        """A digest of everything that defines what runs: equal plans, equal fingerprints."""
        flows = self.to_dict()["flows"]
        text = json.dumps(flows, sort_keys=True, default=repr, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _task_dict(task: Task) -> dict[str, Any]:
    data = {
        "name": task.name,
        "key": task.key,
        "process": task.process,
        "params": dict(task.params),
        "error_tolerance": task.error_tolerance,
        "retries": task.retries,
        "retry_delay": task.retry_delay,
        "timeout": task.timeout,
    }
    # declared data only where declared: the plans of runs recorded before compare equal
    if task.inputs:
        data["inputs"] = {name: describe_source(s) for name, s in task.inputs.items()}
    if task.reads:
        data["reads"] = list(task.reads)
    if task.outputs is not None:
        data["outputs"] = _outputs_dict(task.outputs)
    if task.cache:
        data["cache"] = True
    if task.pools:
        data["pools"] = dict(task.pools)
    if task.map is not None:
        data["map"] = {"over": task.map.variable, "as": task.map.param, "max": task.map.limit}
    if task.scope is not None:
        data["template"] = {"use": task.scope.template, "namespace": task.scope.namespace}
    return data


def _outputs_dict(outputs: Outputs) -> Any:
    if outputs.kind == "one":
        return outputs.names[0]
    if outputs.kind == "sequence":
        return list(outputs.names)
    return dict(zip(outputs.names, outputs.keys))


def select_flows(config: ProjectConfig, selection: Selection) -> list[FlowConfig]:
    """The flows a selection names, in file order; :class:`SelectionError` if none."""
    if selection.flows:
        unknown = [name for name in selection.flows if name not in config.flows]
        if unknown:
            hints = [_hint(name, list(config.flows)) for name in unknown]
            raise SelectionError(
                "unknown flow "
                + ", ".join(f"{n!r}{h}" for n, h in zip(unknown, hints))
                + f"; the flows are: {', '.join(config.flows)}"
            )
        return [flow for name, flow in config.flows.items() if name in selection.flows]
    wanted = set(selection.effective_tags)
    flows = [flow for flow in config.flows.values() if wanted & set(flow.tags)]
    if not flows:
        raise SelectionError(_nothing_selected(config, selection.effective_tags))
    return flows


def build_plan(config: ProjectConfig, selection: Selection, env: str | None = None) -> Plan:
    """The plan for ``selection`` under ``env`` (by default the env a run uses by default;
    an unknown env adds no params: the checks report it). :class:`SelectionError` for a
    ``--param`` key path that names nothing. See the module's docstring."""
    selected_tags = set(selection.effective_tags)
    name, _problems = select_env(config, env)
    env_params = config.envs[name].params if name is not None and name in config.envs else _EMPTY
    overrides = _Overrides(selection.params)
    flows = []
    for flow_config in select_flows(config, selection):
        steps = []
        for step_config in flow_config.steps:
            tasks: list[Task] = []
            skipped: list[str] = []
            for entry in step_config.entries:
                if selected_tags.intersection(entry.avoid_tags):
                    skipped.append(entry.name)
                    continue
                params = overrides.apply(
                    merge_deep({**flow_config.params, **entry.params}, env_params)
                )
                tasks.extend(_expand(flow_config, step_config.name, entry, params, config.cache))
            if tasks:
                steps.append(Step(flow_config.name, step_config.name, tuple(tasks), tuple(skipped)))
        flows.append(Flow(flow_config.name, flow_config.tags, tuple(steps)))
    overrides.check()
    return Plan(tuple(flows), selection)


class _Overrides:
    """``--param`` values (SPEC 20): ``KEY=V`` sets a param of every task; ``a.b.c=V``
    sets the key ``c`` of the mapping ``a.b``, in the params of every task that has that
    mapping — a path that the params of no task hold is a :class:`SelectionError` naming
    the keys there."""

    def __init__(self, given: Mapping[str, Any]) -> None:
        self.given = [(key, split_path(key), value) for key, value in given.items()]
        self.found: set[str] = set()
        self.missed: dict[str, KeyPathError] = {}
        """Per key path never found: where it went deepest (for the message)."""

    def apply(self, params: dict[str, Any]) -> dict[str, Any]:
        for key, path, value in self.given:
            if len(path) == 1:
                params[key] = value
                continue
            try:
                lookup(params, path)
                self.found.add(key)
            except KeyPathError as exc:
                worst = self.missed.get(key)
                if worst is None or exc.depth > worst.depth:
                    self.missed[key] = exc
            with contextlib.suppress(KeyPathError):  # not this task's mapping: not set
                params = set_path(params, path, value)
        return params

    def check(self) -> None:
        for key, path, _value in self.given:
            if len(path) == 1 or key in self.found or key not in self.missed:
                continue  # (not in missed: no task at all)
            raise SelectionError(
                f"--param {key}: no task of the flows selected has this param: "
                f"{self.missed[key].describe()}. "
                f"--param A.B.C=V sets the key C of the mapping A.B where it is there; "
                f"--param {path[0]}={{…}} replaces the whole mapping"
            )


def _expand(
    flow: FlowConfig,
    step: str,
    entry: ProcessEntry,
    params: Mapping[str, Any],
    cache: bool = False,
) -> Iterator[Task]:
    values: Sequence[Any] = entry.iter_param.values if entry.iter_param else (None,)
    for value in values:
        if entry.iter_param is None:
            name, task_params = entry.name, params
        else:
            name = f"{entry.name}[{value}]"
            task_params = {**params, entry.iter_param.name: value}
        yield Task(
            flow=flow.name,
            step=step,
            name=name,
            process=entry.process,
            params=MappingProxyType(task_params),
            error_tolerance=entry.error_tolerance,
            retries=entry.retries,
            retry_delay=entry.retry_delay,
            timeout=entry.timeout,
            inputs=entry.inputs,
            reads=entry.reads,
            outputs=entry.outputs,
            cache=next(c for c in (entry.cache, flow.cache, cache) if c is not None),
            entry=entry,
            pools=entry.pools,
            map=entry.map,
            scope=entry.scope,
        )


def element_task(task: Task, element: Element) -> Task:
    """The task of ``element`` of the mapped ``task``: named ``task[KEY]``, its outputs
    written as ``NAME[KEY]`` (collected into ``NAME`` once every element has ended)."""
    outputs = task.outputs
    if outputs is not None:
        part = element_part(element.key)
        outputs = Outputs(outputs.kind, tuple(f"{n}[{part}]" for n in outputs.names), outputs.keys)
    return Task(
        flow=task.flow,
        step=task.step,
        name=f"{task.name}[{element.key}]",
        process=task.process,
        params=task.params,
        error_tolerance=task.error_tolerance,
        retries=task.retries,
        retry_delay=task.retry_delay,
        timeout=task.timeout,
        inputs=task.inputs,
        reads=task.reads,
        outputs=outputs,
        cache=task.cache,
        entry=task.entry,
        pools=task.pools,
        element=element,
    )


def element_part(key: str) -> str:
    """An element's key as part of a variable name (``files[a%2Fb.csv]``)."""
    from normandy_core.store import file_part

    return file_part(key)


def mask_names(plan: Plan, mask: Callable[[str], str]) -> Plan:
    """``plan`` with the name of each task that holds a credential value masked by
    ``mask`` (SPEC 11): an ``iter_param`` value equal to a password makes the task
    ``name[***]``, and that is its name everywhere — console, log files, history, report.
    Names stay unique in their step (``name[***-2]``); the task's params keep the value."""
    every = list(plan.whole or plan.tasks())
    names: dict[str, str] = {}  # key -> its masked name, where masking changes it
    taken: dict[tuple[str, str], set[str]] = {}
    for task in every:
        taken.setdefault((task.flow, task.step), set()).add(task.name)
    for task in every:
        name = mask(task.name)
        if name == task.name:
            continue
        in_step = taken[(task.flow, task.step)]
        base, number = name, 2
        while name in in_step:
            name = f"{base[:-1]}-{number}]" if base.endswith("]") else f"{base}-{number}"
            number += 1
        in_step.add(name)
        names[task.key] = name
    if not names:
        return plan

    def renamed(task: Task) -> Task:
        return replace(task, name=names[task.key]) if task.key in names else task

    flows = tuple(
        replace(
            flow,
            steps=tuple(
                replace(step, tasks=tuple(renamed(t) for t in step.tasks)) for step in flow.steps
            ),
        )
        for flow in plan.flows
    )
    return Plan(flows, plan.selection, tuple(renamed(t) for t in plan.whole))


def matches(task: Task, pattern: str) -> bool:
    """Whether ``pattern`` names ``task``: ``step``, ``step.task`` (or ``flow.step``) or
    ``flow.step.task``, with ``*`` wildcards (SPEC 13). The steps of a template's use
    (``linear.split``) are named by their own name and by the use's (``linear``)."""
    use, dot, _ = task.step.partition(".")  # a template's steps: ``use.step``
    if fnmatch.fnmatchcase(task.step, pattern) or (dot and fnmatch.fnmatchcase(use, pattern)):
        return True
    parts = pattern.count(".") + 1
    if parts == 1:
        return False
    step_task = fnmatch.fnmatchcase(f"{task.step}.{task.name}", pattern)
    if parts == 2:
        return step_task or fnmatch.fnmatchcase(f"{task.flow}.{task.step}", pattern)
    # more parts: a key, or (a template's step having dots) ``use.step.task`` or
    # ``flow.use.step``
    return fnmatch.fnmatchcase(task.key, pattern) or (
        "." in task.step and (step_task or fnmatch.fnmatchcase(f"{task.flow}.{task.step}", pattern))
    )


def restrict(
    plan: Plan,
    start: Sequence[str] = (),
    end: Sequence[str] = (),
    only: Sequence[str] = (),
) -> Plan:
    """Part of ``plan`` (SPEC 13): from the first task named by one of ``start`` on (the
    tasks named in its step, and every later step), up to the tasks named by ``end`` (the
    steps before, and those tasks in theirs), or ``only`` the tasks named — in each flow
    where they name something. :class:`SelectionError` for a pattern that names nothing."""
    if not (start or end or only):
        return plan
    for flag, patterns in (("--from", start), ("--to", end), ("--only", only)):
        check_patterns(plan, flag, patterns)

    def named(task: Task, patterns: Sequence[str]) -> bool:
        return any(matches(task, p) for p in patterns)

    flows = []
    for flow in plan.flows:
        keep: list[list[Task]] = [list(step.tasks) for step in flow.steps]
        if only:
            keep = [[t for t in tasks if named(t, only)] for tasks in keep]
        first = None
        if start:
            first = next(
                (i for i, st in enumerate(flow.steps) if any(named(t, start) for t in st.tasks)),
                None,
            )
            if first is not None:
                keep = [[] if i < first else tasks for i, tasks in enumerate(keep)]
                keep[first] = [t for t in keep[first] if named(t, start)]
        if end:
            last = max(
                (i for i, st in enumerate(flow.steps) if any(named(t, end) for t in st.tasks)),
                default=None,
            )
            if last is not None:
                keep = [[] if i > last else tasks for i, tasks in enumerate(keep)]
                keep[last] = [t for t in keep[last] if named(t, end)]
                if first is not None and (last < first or not any(keep[first : last + 1])):
                    raise SelectionError(
                        f"in flow {flow.name!r}, --to {' '.join(end)} comes before --from "
                        f"{' '.join(start)}: nothing runs between them; give the earlier step "
                        "to --from and the later one to --to (`normandy graph` shows the order)"
                    )
        steps = tuple(
            Step(step.flow, step.name, tuple(tasks), step.skipped)
            for step, tasks in zip(flow.steps, keep)
            if tasks
        )
        if steps:
            flows.append(Flow(flow.name, flow.tags, steps))
    part = tuple(
        (flag, pattern)
        for flag, patterns in (("--from", start), ("--to", end), ("--only", only))
        for pattern in patterns
    )
    return Plan(tuple(flows), replace(plan.selection, part=part), tuple(plan.tasks()))


def check_patterns(plan: Plan, flag: str, patterns: Sequence[str]) -> None:
    """A :class:`SelectionError` for the first of ``patterns`` (given with ``flag``:
    ``--rerun``, ``--from``…) that names no task of ``plan``, with a *did you mean*."""
    for pattern in patterns:
        if any(matches(t, pattern) for t in plan.tasks()):
            continue
        names = {
            name
            for t in plan.tasks()
            for name in (t.step, f"{t.step}.{t.name}", f"{t.flow}.{t.step}", t.key)
        }
        close = difflib.get_close_matches(pattern, sorted(names), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SelectionError(
            f"{flag} {pattern!r} names no task of the flows selected{hint}; a pattern is "
            "step, step.task or flow.step.task (with * wildcards); `normandy graph` shows them"
        )


def _nothing_selected(config: ProjectConfig, tags: Sequence[str]) -> str:
    all_tags = sorted({tag for flow in config.flows.values() for tag in flow.tags})
    close = [c for tag in tags for c in difflib.get_close_matches(tag, all_tags, n=1)]
    hint = f" Did you mean {' or '.join(map(repr, dict.fromkeys(close)))}?" if close else ""
    lines = [f"no flow has the tag{'s' if len(tags) > 1 else ''} {', '.join(tags)}.{hint}"]
    lines.append(f"  tags:  {', '.join(all_tags) if all_tags else '(no flow has tags)'}")
    lines.append(f"  flows: {', '.join(config.flows) if config.flows else '(none)'}")
    lines.append("Choose with --tags TAG or --flow NAME.")
    return "\n".join(lines)


def _hint(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
