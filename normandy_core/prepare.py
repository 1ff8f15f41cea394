"""What ``normandy run`` runs, prepared from what the command line asked for: the flows
selected (or those of the run it resumes), the project checked, the plan built, the
resumed run's successes and variables found. The command only parses, calls and renders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from normandy_core.errors import Problem, SelectionError
from normandy_core.fingerprint import verify
from normandy_core.history import History, Success
from normandy_core.plan import (
    Plan,
    Selection,
    Task,
    build_plan,
    check_patterns,
    mask_names,
    restrict,
    select_flows,
)
from normandy_core.project import Checked, Project, check_project, credentials_mask
from normandy_core.resume import Resume, prepare_resume, selection_of
from normandy_core.store import SUFFIX, Place, store_root
from normandy_core.trace import VARIABLE


@dataclass(frozen=True)
class Borrowed:
    """A variable a partial run takes from an earlier run (SPEC 13): the latest in which
    its ``producer`` (a task key) succeeded; ``changed``: what of the producer changed
    since (``f.s.t's code``), empty where nothing did."""

    flow: str
    name: str
    run_id: str
    producer: str
    hash: str
    read: bool = True
    """Whether a task of the part reads it: declared, or as it read it when it last ran
    (the others are there for a ``pipe.vars`` read nobody declared; not worth a line)."""
    changed: str = ""

    def describe(self) -> str:
        """``input X from run R (made by TASK)``, or, where its producer changed since,
        ``input X from run R, made before TASK's code changed``."""
        if self.changed:
            return f"input {self.name} from run {self.run_id}, made before {self.changed} changed"
        return f"input {self.name} from run {self.run_id} (made by {self.producer})"


@dataclass(frozen=True)
class PreparedRun:
    """A run ready to start: its plan, the checked env, what it resumes (if it does), and
    the variables it takes from earlier runs (a partial run's inputs)."""

    plan: Plan
    checked: Checked
    resume: Resume | None = None
    borrowed: tuple[Borrowed, ...] = ()


def prepare_run(
    project: Project,
    selection: Selection,
    env: str | None = None,
    *,
    executor: str | None = None,
    resume: str | None = None,
    part: tuple[Sequence[str], Sequence[str], Sequence[str]] = ((), (), ()),
    load_versions: Mapping[str, str] | None = None,
    rerun: Sequence[str] = (),
) -> PreparedRun:
    """Check ``project`` for ``selection`` (every problem at once, as one
    :class:`~normandy_core.errors.ConfigError`) and plan it. With ``resume`` (a run id or
    ``last``), the tags, flows and env are that run's and so are its params, under those
    of ``selection`` (``--param``): its successes are reused where nothing they depend on
    changed. ``part``: the ``--from``, ``--to`` and ``--only`` patterns: part of the
    flows runs, its inputs made by what does not run taken from earlier runs.
    ``load_versions``: ``--load-version`` (dataset -> the run id of the version to load).
    ``rerun``: the ``--rerun`` patterns, each of which must name a task that runs."""
    if resume is None:
        prepared = _prepared(project, selection, env, executor, part, load_versions)
        check_patterns(prepared.plan, "--rerun", rerun)
        return prepared
    history = History(project.root / ".normandy")
    try:
        record = history.get(resume)
        then = selection_of(record)
        selection = Selection(then.tags, then.flows, {**then.params, **selection.params})
        if not any(part):  # the same part of the flows as the run resumed
            part = _patterns(then.part)
        prepared = _prepared(project, selection, record.env, executor, part, load_versions)
        check_patterns(prepared.plan, "--rerun", rerun)
        store = store_root(project.root, project.config.store)
        resumed = prepare_resume(history, record, prepared.plan, store)
    finally:
        history.close()
    return PreparedRun(prepared.plan, prepared.checked, resumed, prepared.borrowed)


def _prepared(
    project: Project,
    selection: Selection,
    env: str | None,
    executor: str | None,
    part: tuple[Sequence[str], Sequence[str], Sequence[str]],
    load_versions: Mapping[str, str] | None = None,
) -> PreparedRun:
    plan = None
    flows = None
    borrowed: list[Borrowed] = []
    problems: list[Problem] = []
    missing: list[tuple[str, str]] = []
    try:  # with the file's own problems too: the data flow's are reported with them
        flows = [f.name for f in select_flows(project.config, selection)]
        # a task named by a credential value is named masked, everywhere (SPEC 11)
        mask = credentials_mask(project, [env])
        plan = restrict(mask_names(build_plan(project.config, selection, env), mask), *part)
    except SelectionError:
        if not project.problems:
            raise  # else the file's problems say why nothing could be selected
    if plan is not None and plan.whole and not project.problems:
        borrowed, problems, missing = _borrow(project, plan)
    available = _available(borrowed)
    for flow, name in missing:  # reported by _borrow, with their producer: not twice
        available.setdefault(flow, {})[name] = "(missing)"
    # signatures read from the sources where that is certain: the workers import the
    # processes, the orchestrator need not (see normandy_core.signatures)
    checked = check_project(
        project,
        flows,
        env,
        executor=executor,
        imports=False,
        plan=plan,
        available=available,
        extra=problems,
        load_versions=load_versions,
    )
    assert plan is not None  # else check_project raised the project's problems
    if borrowed:
        borrowed = _changed_since(project, plan, checked, borrowed)
    return PreparedRun(plan, checked, None, tuple(borrowed))


def _patterns(
    part: Sequence[tuple[str, str]],
) -> tuple[Sequence[str], Sequence[str], Sequence[str]]:
    """``--from``, ``--to`` and ``--only`` patterns, from a recorded run's part."""
    return tuple(  # type: ignore[return-value]
        tuple(pattern for given, pattern in part if given == flag)
        for flag in ("--from", "--to", "--only")
    )


def _available(borrowed: Sequence[Borrowed]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for b in borrowed:
        found.setdefault(b.flow, {})[b.name] = f"{b.producer} in run {b.run_id}"
    return found


def _borrow(
    project: Project, plan: Plan
) -> tuple[list[Borrowed], list[Problem], list[tuple[str, str]]]:
    """What a part of a flow reads that the tasks left out make: the variables their
    latest successes wrote (still stored); a problem for a declared input that no earlier
    run made."""
    from normandy_core.dataflow import task_reads
    from normandy_core.project import signature_or_none

    kept = {t.key for t in plan.tasks()}
    datasets = project.config.datasets  # files, not variables: checked as datasets
    store = store_root(project.root, project.config.store)
    history = History(project.root / ".normandy")
    borrowed: dict[tuple[str, str], Borrowed] = {}
    problems: list[Problem] = []
    missing: list[tuple[str, str]] = []
    try:
        for flow in plan.flows:
            whole = [t for t in plan.whole if t.flow == flow.name]
            first = next(i for i, t in enumerate(whole) if t.key in kept)
            before = whole[:first]
            makers = {name: t for t in before for name in (t.outputs.names if t.outputs else ())}
            reads = _reads(history, project, [t for t in whole if t.key in kept])
            for producer in before:  # their writes, declared or not, as they last succeeded
                success = _latest(history, store, producer.key)
                if success is not None:
                    for w in success.writes:
                        borrowed[(flow.name, w.name)] = Borrowed(
                            flow.name,
                            w.name,
                            success.run_id,
                            producer.key,
                            w.hash or "",
                            read=w.name in reads,
                        )
            for task in (t for t in whole if t.key in kept):
                signature = signature_or_none(project.registry, task.process)
                for name in task_reads(task, signature):
                    maker = makers.get(name)
                    if maker is None or (flow.name, name) in borrowed or name in datasets:
                        continue
                    param = signature.parameter(name) if signature else None
                    if param is not None and param.optional:
                        continue
                    missing.append((flow.name, name))
                    where = task.entry.where if task.entry else None
                    message = (
                        f"{task.key} reads {name!r}, made by {maker.key}, which does not run "
                        "in this part of the flow and has not succeeded in an earlier run "
                        "(or its variables are no longer stored): run it first, or start "
                        f"earlier (--from {maker.step})"
                    )
                    if where is not None:
                        problems.append(where.problem(message))
                    else:
                        raise SelectionError(message)
    finally:
        history.close()
    return list(borrowed.values()), problems, missing


def _reads(history: History, project: Project, tasks: Sequence[Task]) -> set[str]:
    """What ``tasks`` read: their declared inputs, and what each read (through
    ``pipe.vars`` too) when it last succeeded."""
    from normandy_core.dataflow import task_reads
    from normandy_core.project import signature_or_none

    found: set[str] = set()
    accesses: dict[str, dict[str, Any]] = {}  # per run: its lineage, read once
    for task in tasks:
        found.update(task_reads(task, signature_or_none(project.registry, task.process)))
        last = history.successes(task.key, limit=1)
        if last:
            run_id = last[0].origin  # where it ran: a cached success records no reads
            if run_id not in accesses:
                accesses[run_id] = history.accesses(run_id)
            found.update(
                a.name for a in accesses[run_id].get(task.key, ()) if a.direction == "read"
            )
    return found


def _changed_since(
    project: Project, plan: Plan, checked: Checked, borrowed: list[Borrowed]
) -> list[Borrowed]:
    """``borrowed``, each saying what of its producer changed since it was made: its code,
    its params, its inputs (one of them made before its own producer changed), or what it
    read (a file…) — as a run would find it, were the producer to run now."""
    from dataclasses import replace

    from normandy_core.execution._preview import Preview
    from normandy_core.execution._reuse import Reuse
    from normandy_core.masking import secret_values

    store = store_root(project.root, project.config.store)
    variables = Preview()
    for b in borrowed:
        variables.borrow(b.flow, b.name, b.hash)
    history = History(project.root / ".normandy")
    try:
        reuse = Reuse(
            history, store, variables, checked, project.registry, secret_values(checked.credentials)
        )
        tasks = {t.key: t for t in plan.whole}
        makers = {(b.flow, b.name): b.producer for b in borrowed}
        made_in = {b.producer: b.run_id for b in borrowed}
        changed: dict[str, str] = {}
        for key, run_id in made_in.items():  # in plan order
            success = next((s for s in history.successes(key) if s.run_id == run_id), None)
            if success is None or key not in tasks:
                continue
            task = tasks[key]
            reasons = verify(success.fingerprint, reuse.base(task), reuse.world(task, success))
            upstream = [
                makers[(task.flow, name)]
                for name in success.fingerprint.trace.read(VARIABLE)
                if makers.get((task.flow, name)) in changed
            ]
            what = _what(reasons, bool(upstream))
            if what:
                changed[key] = f"{key}'s {what}"
    finally:
        history.close()
    return [replace(b, changed=changed.get(b.producer, "")) for b in borrowed]


def _what(reasons: Sequence[str], upstream: bool) -> str:
    """``code``, ``params``, ``inputs`` or ``code and params``…: what the reasons a task
    runs again are about."""
    found = []
    for reason in reasons:
        if reason.startswith(("code changed", "process changed", "outputs changed")):
            found.append("code")
        elif reason.startswith("params changed"):
            found.append("params")
        elif reason.startswith(("input changed", "inputs changed")):
            found.append("inputs")
        else:
            found.append(f"reads ({reason})")
    if upstream:
        found.append("inputs")
    found = list(dict.fromkeys(found))
    return " and ".join(found)


def _latest(history: History, store: Place, key: str) -> Success | None:
    """The latest success of the task ``key`` whose variables are still stored."""
    for success in history.successes(key):
        flow_dir = store / "runs" / success.run_id / "vars"
        if all((flow_dir / w.flow / (w.name + SUFFIX)).exists() for w in success.writes):
            return success
    return None
