"""The scheduling state machine (:class:`normandy_core.execution.Scheduler`) under a fake,
in-process executor whose attempts end as a script says: fast and deterministic, no worker
process. What it does end to end, with real workers, is in ``tests/cli``."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from normandy_core.binding import Outputs
from normandy_core.config import Location, MapSpec, ProcessEntry
from normandy_core.dependencies import Schedule, plan_data, schedule_of
from normandy_core.errors import ExecutorError
from normandy_core.events import RunObserver
from normandy_core.execution import Attempt, Decision, Outcome, Scheduler
from normandy_core.execution._events import EventBus
from normandy_core.execution._variables import RunVariables
from normandy_core.executors import Executor, TaskTimedOut, WorkerCrashed, WorkerSetup
from normandy_core.history import Success, VariableAccess
from normandy_core.plan import Flow, Plan, Selection, Step, Task
from normandy_core.store import LocalPlace, Variables, store_output
from normandy_core.worker import TaskCall, TaskResult

Behaviour = str


class Scripted(Executor):
    """Ends each attempt as ``script[key][attempt - 1]`` says (default ``ok``):

    ``ok``, ``write:NAME`` (writes the variable NAME, then succeeds; ``write:NAME,fail``
    then fails), ``list:NAME=a;b`` (writes the list ``["a", "b"]``), ``echo`` (returns
    its element, doubled, as its output), ``slow:SECONDS`` (succeeds that much later,
    from another thread), ``fail`` (the process
    raised), ``crash``, ``timeout``, ``own-interrupt`` (the process raised
    KeyboardInterrupt), ``hang`` (never ends), ``ctrl-c`` (Ctrl-C arrives as it is
    submitted) or ``broken`` (the executor itself fails)."""

    uses_processes = False

    def __init__(self, script: dict[str, Sequence[Behaviour]] | None = None) -> None:
        super().__init__(2, WorkerSetup(None))
        self.script = script or {}
        self.submitted: list[tuple[str, int, float]] = []

    def submit(self, call: TaskCall, timeout: float | None = None) -> Future[TaskResult]:
        self.submitted.append((call.key, call.attempt, time.monotonic()))
        steps = self.script.get(call.key, ())
        what = steps[call.attempt - 1] if call.attempt <= len(steps) else "ok"
        future: Future[TaskResult] = Future()
        now = time.time()
        if what == "ctrl-c":
            raise KeyboardInterrupt
        if what == "broken":
            raise RuntimeError("the pool is not running")
        if what == "hang":
            return future
        if what.startswith("write:"):  # write:NAME, or write:NAME,then
            name, _, then = what[6:].partition(",")
            Variables(call.vars_dir, call.staging_dir)[name] = call.key
            what = then or "ok"
        if what.startswith("list:"):
            name, _, items = what[5:].partition("=")
            Variables(call.vars_dir, call.staging_dir)[name] = items.split(";")
            what = "ok"
        if what == "echo":
            assert call.outputs is not None
            store_output(
                Variables(call.vars_dir, call.staging_dir),
                call.outputs.names[0],
                call.arguments["item"] * 2,
                call.outputs_dir or None,
            )
            what = "ok"
        if what.startswith("slow:"):
            result = TaskResult(call.key, True, 1000 + call.attempt, now, now + 0.01)
            threading.Timer(float(what[5:]), future.set_result, (result,)).start()
            return future
        if what == "ok":
            future.set_result(TaskResult(call.key, True, 1000 + call.attempt, now, now + 0.01))
        elif what == "fail":
            future.set_result(
                TaskResult(call.key, False, 1000, now, now, "ValueError", "bad row", "Traceback…")
            )
        elif what == "crash":
            future.set_exception(WorkerCrashed(-9, 4242))
        elif what == "timeout":
            future.set_exception(TaskTimedOut(5))
        elif what == "own-interrupt":
            future.set_exception(KeyboardInterrupt())
        else:  # pragma: no cover - a typo in a test
            raise AssertionError(what)
        return future

    def shutdown(self, *, cancel: bool = False) -> None:
        pass


class Recorded(RunObserver):
    """Keeps every event as a tuple, tasks by key."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_") or name == "events" or not hasattr(RunObserver, name):
            return object.__getattribute__(self, name)

        def record(*args: Any) -> None:
            self.events.append((name, *(_short(a) for a in args)))

        return record

    def of(self, event: str) -> list[tuple[Any, ...]]:
        return [e[1:] for e in self.events if e[0] == event]


def _short(value: Any) -> Any:
    if isinstance(value, Task):
        return value.key
    if isinstance(value, (Step, Flow)):
        return value.name
    if isinstance(value, Attempt):
        return (value.task.key, value.number, value.status)
    if isinstance(value, Outcome):
        return (value.task.key, value.status)
    return value


def task(flow: str, step: str, name: str, **options: Any) -> Task:
    return Task(flow, step, name, name, MappingProxyType({}), **options)


def plan_of(*flows: tuple[str, Sequence[Sequence[Task]]]) -> Plan:
    return Plan(
        tuple(
            Flow(name, ("default",), tuple(Step(name, s[0].step, tuple(s)) for s in steps))
            for name, steps in flows
        ),
        Selection(),
    )


class Run:
    """A scheduler over ``plan`` with a :class:`Scripted` executor, ready to run."""

    def __init__(self, tmp_path: Path, plan: Plan, script=None, **options: Any) -> None:
        self.plan = plan
        self.executor = Scripted(script)
        self.observer = Recorded()
        self.outcomes = {t.key: Outcome(t) for t in plan.tasks()}
        self.variables = RunVariables(LocalPlace(tmp_path / "run"))
        self.scheduler = Scheduler(
            plan,
            self.executor,
            self.outcomes,
            self.variables,
            EventBus([self.observer]),
            self._call,
            executor_name="scripted",
            **options,
        )

    def _call(self, task: Task, tags: tuple[str, ...], attempt: int) -> TaskCall:
        store = self.variables.flow(task.flow)
        return TaskCall(
            run_id="r",
            flow=task.flow,
            step=task.step,
            task=task.name,
            key=task.key,
            process=task.process,
            target="x:y",
            params={},
            tags=tags,
            env="dev",
            confs={},
            credentials={},
            root="/",
            vars_dir=str(store.vars_dir),
            staging_dir=str(store.staging(task.key)),
            attempt=attempt,
            outputs=task.outputs,
            arguments={"item": task.element.value} if task.element is not None else {},
            outputs_dir=str(store.vars_dir) if task.element is not None else "",
        )

    def status(self, key: str) -> tuple[str, int, bool]:
        o = self.outcomes[key]
        return o.status, o.attempts, o.tolerated

    def committed(self, flow: str) -> list[str]:
        return self.variables.flow(flow).names()


A, B, C = task("f", "s1", "a"), task("f", "s1", "b"), task("f", "s2", "c")


def test_a_run_that_succeeds(tmp_path):
    run = Run(tmp_path, plan_of(("f", [[A, B], [C]])), {"f.s1.a": ["write:x"]})
    assert run.scheduler.run() == "succeeded"
    assert [run.status(k) for k in ("f.s1.a", "f.s1.b", "f.s2.c")] == [("succeeded", 1, False)] * 3
    assert run.observer.events[:4] == [
        ("flow_started", "f"),
        ("step_started", "s1"),
        ("task_submitted", "f.s1.a", 1),
        ("task_submitted", "f.s1.b", 1),
    ]
    assert run.observer.of("step_ended") == [("s1", True), ("s2", True)]
    assert run.observer.of("flow_ended") == [("f", "succeeded")]
    assert run.committed("f") == ["x"]
    assert run.outcomes["f.s1.a"].variables == ("x",)
    # every attempt is seen started (from its result) before it ends
    names = [
        e[0]
        for e in run.observer.events
        if e[1:2] == ("f.s1.a",) or (e[0] == "attempt_ended" and e[1][0] == "f.s1.a")
    ]
    assert names.index("task_started") < names.index("attempt_ended")
    assert run.observer.of("waiting")  # the history's moments to write


def test_retries_until_success(tmp_path):
    flaky = task("f", "s1", "a", retries=2)
    run = Run(tmp_path, plan_of(("f", [[flaky]])), {"f.s1.a": ["fail", "crash", "ok"]})
    assert run.scheduler.run() == "succeeded"
    assert run.status("f.s1.a") == ("succeeded", 3, False)
    assert run.observer.of("attempt_ended") == [
        (("f.s1.a", 1, "failed"),),
        (("f.s1.a", 2, "crashed"),),
        (("f.s1.a", 3, "succeeded"),),
    ]
    assert [e[:2] for e in run.observer.of("task_retrying")] == [("f.s1.a", 1), ("f.s1.a", 2)]
    assert len(run.observer.of("task_ended")) == 1


def test_a_retry_waits_for_its_delay(tmp_path):
    slow = task("f", "s1", "a", retries=1, retry_delay=0.2)
    run = Run(tmp_path, plan_of(("f", [[slow, B]])), {"f.s1.a": ["fail", "ok"]})
    assert run.scheduler.run() == "succeeded"
    (_, _, first), _, (_, attempt, second) = run.executor.submitted
    assert attempt == 2 and second - first >= 0.2


def test_an_exhausted_task_fails_its_flow_and_the_next_steps_never_start(tmp_path):
    failing = task("f", "s1", "b", retries=1)
    run = Run(tmp_path, plan_of(("f", [[A, failing], [C]])), {"f.s1.b": ["fail", "fail"]})
    assert run.scheduler.run() == "failed"
    assert run.status("f.s1.b") == ("failed", 2, False)
    assert run.outcomes["f.s1.b"].error.type == "ValueError"  # type: ignore[union-attr]
    assert run.status("f.s2.c") == ("not started", 0, False)
    assert run.observer.of("step_ended") == [("s1", False)]
    assert run.observer.of("flow_ended") == [("f", "failed")]
    assert all(key != "f.s2.c" for key, *_ in run.executor.submitted)


def test_a_tolerated_failure_lets_the_flow_go_on(tmp_path):
    tolerated = task("f", "s1", "b", error_tolerance=True)
    run = Run(tmp_path, plan_of(("f", [[A, tolerated], [C]])), {"f.s1.b": ["timeout"]})
    assert run.scheduler.run() == "succeeded"
    assert run.status("f.s1.b") == ("timed out", 1, True)
    assert run.status("f.s2.c") == ("succeeded", 1, False)


def test_a_crash_mid_step_fails_that_task_only(tmp_path):
    script = {"f.s1.a": ["write:from_a"], "f.s1.b": ["crash"]}
    run = Run(tmp_path, plan_of(("f", [[A, B, task("f", "s1", "d")], [C]])), script)
    assert run.scheduler.run() == "failed"
    crashed = run.outcomes["f.s1.b"]
    assert (crashed.status, crashed.pid) == ("crashed", 4242)
    assert crashed.error is not None and "SIGKILL" in crashed.error.message
    assert run.status("f.s1.a") == run.status("f.s1.d") == ("succeeded", 1, False)
    assert run.committed("f") == ["from_a"]  # the others' writes are committed


def test_a_failed_attempts_writes_are_discarded(tmp_path):
    failing = task("f", "s1", "a", retries=1, error_tolerance=True)
    run = Run(tmp_path, plan_of(("f", [[failing]])), {"f.s1.a": ["write:half,fail", "crash"]})
    assert run.scheduler.run() == "succeeded"
    assert run.status("f.s1.a") == ("crashed", 2, True)
    assert run.committed("f") == []
    assert not run.variables.flow("f").staging("f.s1.a").exists()


def test_two_tasks_of_a_step_writing_one_name_fail_the_second(tmp_path):
    run = Run(tmp_path, plan_of(("f", [[A, B]])), {"f.s1.a": ["write:x"], "f.s1.b": ["write:x"]})
    assert run.scheduler.run() == "failed"
    ended = {run.outcomes[k].status: run.outcomes[k] for k in ("f.s1.a", "f.s1.b")}
    first, second = ended["succeeded"], ended["failed"]  # whichever ended second fails
    assert second.error is not None and second.error.type == "VariableConflict"
    assert f"'x' (also written by {first.task.key})" in second.error.message
    assert run.committed("f") == ["x"]


def test_keep_going_runs_the_next_flows(tmp_path):
    other = task("g", "s1", "z")
    plan = plan_of(("f", [[A]]), ("g", [[other]]))
    stopped = Run(tmp_path / "1", plan, {"f.s1.a": ["fail"]})
    assert stopped.scheduler.run() == "failed"
    assert stopped.observer.of("flow_skipped") == [("g",)]
    assert stopped.status("g.s1.z") == ("not started", 0, False)
    going = Run(tmp_path / "2", plan, {"f.s1.a": ["fail"]}, keep_going=True)
    assert going.scheduler.run() == "failed"
    assert going.status("g.s1.z") == ("succeeded", 1, False)
    assert going.observer.of("flow_ended") == [("f", "failed"), ("g", "succeeded")]


def test_ctrl_c_interrupts_what_runs(tmp_path):
    run = Run(tmp_path, plan_of(("f", [[A, B], [C]])), {"f.s1.a": ["hang"], "f.s1.b": ["ctrl-c"]})
    with pytest.raises(KeyboardInterrupt):
        run.scheduler.run()
    run.scheduler.interrupt()
    assert run.status("f.s1.a") == ("interrupted", 1, False)
    assert run.status("f.s1.b") == ("interrupted", 1, False)
    assert run.status("f.s2.c") == ("not started", 0, False)
    assert (("f.s1.a", 1, "interrupted"),) in run.observer.of("attempt_ended")
    assert (("f.s1.a", "interrupted"),) in run.observer.of("task_ended")


def test_a_processs_own_keyboard_interrupt_is_a_failure_of_its_task(tmp_path):
    run = Run(tmp_path, plan_of(("f", [[A, B]])), {"f.s1.a": ["own-interrupt"]})
    assert run.scheduler.run() == "failed"
    failed = run.outcomes["f.s1.a"]
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.type == "KeyboardInterrupt"
    assert run.status("f.s1.b") == ("succeeded", 1, False)


class Reusing:
    """Stands for Reuse: every task named in ``reused`` is reused from run r0 with the
    variable ``from_<task>``; the others run."""

    force = False

    def __init__(self, variables: RunVariables, reused: set[str]) -> None:
        self.variables = variables
        self.reused = reused

    def base(self, task: Task) -> None:
        return None

    def of_attempt(self, task: Task, *args: Any) -> None:
        return None

    def code_ahead(self, tasks: Any) -> None:
        return None

    def decide(self, task: Task) -> Decision:
        if task.key not in self.reused:
            return Decision(task, None, "no earlier success")
        write = VariableAccess(task.flow, f"from_{task.name}", "write", "h1", 1)
        return Decision(task, Success("r0", None, {}, (write,), "r0"), "reuse r0")  # type: ignore[arg-type]

    def bind(self, decision: Decision) -> tuple[str, ...]:
        task = decision.task
        Variables(
            str(self.variables.flow(task.flow).vars_dir),
            str(self.variables.flow(task.flow).staging(task.key)),
        )[f"from_{task.name}"] = "reused"
        return (f"from_{task.name}",)


def test_a_reused_task_is_not_run_and_its_variables_are_committed(tmp_path):
    run = Run(tmp_path, plan_of(("f", [[A, B], [C]])))
    run.scheduler.reuse = Reusing(run.variables, {"f.s1.a"})  # type: ignore[assignment]
    assert run.scheduler.run() == "succeeded"
    assert [key for key, *_ in run.executor.submitted] == ["f.s1.b", "f.s2.c"]
    cached = run.outcomes["f.s1.a"]
    assert (cached.status, cached.cached_from, cached.attempts) == ("cached", "r0", 0)
    assert run.observer.of("task_cached") == [("f.s1.a", "r0")]
    assert ("f.s1.a", "r0", "reuse r0") in run.observer.of("task_decided")
    assert ("f.s1.b", None, "no earlier success") in run.observer.of("task_decided")
    assert run.committed("f") == ["from_a"]  # at its step's end, as a task that ran
    assert run.variables.hash_of("f", "from_a") == "h1"


def test_a_broken_executor_stops_the_run(tmp_path):
    run = Run(tmp_path, plan_of(("f", [[A], [C]])), {"f.s2.c": ["broken"]})
    with pytest.raises(ExecutorError, match="cannot run f.s2.c: RuntimeError: the pool is not"):
        run.scheduler.run()
    assert run.status("f.s1.a") == ("succeeded", 1, False)


# -- pools, maps and dataflow scheduling (SPEC 19, 20) ------------------------------------------


def declared(step: str, name: str, reads=(), writes=(), flow: str = "f", **options) -> Task:
    """A task that declares what it reads (through pipe.vars) and outputs."""
    outputs = Outputs("sequence", tuple(writes)) if writes else None
    return Task(
        flow, step, name, name, MappingProxyType({}), reads=tuple(reads), outputs=outputs, **options
    )


def dataflow(plan: Plan) -> Schedule:
    return schedule_of(plan, plan_data(plan, lambda name: None))


def holding(events: list[tuple[Any, ...]]) -> int:
    """The most attempts handed to the executor and not ended, at any moment."""
    most = now = 0
    for event in events:
        if event[0] == "task_submitted":
            now += 1
            most = max(most, now)
        elif event[0] == "attempt_ended":
            now -= 1
    return most


def test_a_pool_bounds_the_attempts_held_at_once_and_the_others_wait(tmp_path):
    tasks = [task("f", "s1", f"t{i}", pools=MappingProxyType({"db": 1})) for i in range(5)]
    free = task("f", "s1", "free")
    run = Run(tmp_path, plan_of(("f", [[*tasks, free]])), pools={"db": 2})
    assert run.scheduler.run() == "succeeded"
    assert holding([e for e in run.observer.events if e[1:2] != ("f.s1.free",)]) == 2
    waited = [("f.s1.t2", "db"), ("f.s1.t3", "db"), ("f.s1.t4", "db")]
    assert run.observer.of("task_waiting") == waited
    assert ("f.s1.free", 1) in run.observer.of("task_submitted")  # no pool: never waits
    assert all(run.status(t.key) == ("succeeded", 1, False) for t in tasks)
    # without pools, as many tasks are all handed over at once
    unbounded = Run(tmp_path / "2", plan_of(("f", [[task("f", "s1", f"t{i}") for i in range(5)]])))
    assert unbounded.scheduler.run() == "succeeded"
    assert holding(unbounded.observer.events) == 5


def test_a_retried_task_gives_its_units_back_while_it_waits_for_its_delay(tmp_path):
    flaky = task("f", "s1", "a", pools=MappingProxyType({"db": 1}), retries=1, retry_delay=0.3)
    other = task("f", "s1", "b", pools=MappingProxyType({"db": 1}))
    script = {"f.s1.a": ["fail", "ok"]}
    run = Run(tmp_path, plan_of(("f", [[flaky, other]])), script, pools={"db": 1})
    assert run.scheduler.run() == "succeeded"
    submitted = [key for key, *_ in run.executor.submitted]
    assert submitted == ["f.s1.a", "f.s1.b", "f.s1.a"]  # b ran during a's delay


def test_dataflow_starts_a_task_once_what_it_reads_is_written(tmp_path):
    fast, slow = declared("s1", "fast", writes=["a"]), declared("s1", "slow", writes=["b"])
    uses_a = declared("s2", "uses_a", reads=["a"])
    plan = plan_of(("f", [[fast, slow], [uses_a]]))
    script = {"f.s1.fast": ["write:a"], "f.s1.slow": ["slow:0.3"]}
    steps = Run(tmp_path / "steps", plan, script)
    assert steps.scheduler.run() == "succeeded"
    data = Run(tmp_path / "data", plan, script, schedule=dataflow(plan))
    assert data.scheduler.run() == "succeeded"

    def before(run: Run) -> bool:
        events = run.observer.events
        return events.index(("task_submitted", "f.s2.uses_a", 1)) < events.index(
            ("attempt_ended", ("f.s1.slow", 1, "succeeded"))
        )

    assert not before(steps) and before(data)
    # a step starts with its first task and ends with its last: both still told
    assert data.observer.of("step_started") == [("s1",), ("s2",)]
    assert sorted(data.observer.of("step_ended")) == [("s1", True), ("s2", True)]
    assert data.committed("f") == ["a"]  # committed as its writer succeeded


def test_under_dataflow_a_failure_stops_what_depends_on_it_and_fails_the_flow(tmp_path):
    plan = plan_of(
        ("f", [[declared("s1", "bad", writes=["x"]), declared("s1", "good", writes=["y"])],
               [declared("s2", "needs_x", reads=["x"]), declared("s2", "needs_y", reads=["y"])],
               [declared("s3", "after", reads=["x"])]]),
        ("g", [[task("g", "s1", "later")]]),
    )  # fmt: skip
    script = {"f.s1.bad": ["fail"], "f.s1.good": ["write:y"]}
    run = Run(tmp_path, plan, script, schedule=dataflow(plan))
    assert run.scheduler.run() == "failed"
    assert run.status("f.s2.needs_y") == ("succeeded", 1, False)
    assert run.status("f.s2.needs_x")[0] == run.status("f.s3.after")[0] == "not started"
    assert sorted(run.observer.of("flow_ended")) == [("f", "failed"), ("g", "succeeded")]
    tolerated = declared("s1", "bad", writes=["x"], error_tolerance=True)
    plan = plan_of(("f", [[tolerated], [declared("s2", "needs_x", reads=["x"])]]))
    run = Run(tmp_path / "2", plan, script, schedule=dataflow(plan))
    assert run.scheduler.run() == "succeeded"  # a tolerated failure stops nothing
    assert run.status("f.s2.needs_x") == ("succeeded", 1, False)


def test_flows_that_share_nothing_run_side_by_side_under_dataflow(tmp_path):
    plan = plan_of(("f", [[task("f", "s1", "slow")]]), ("g", [[task("g", "s1", "quick")]]))
    script = {"f.s1.slow": ["slow:0.3"]}
    for schedule, side_by_side in ((None, False), (dataflow(plan), True)):
        run = Run(tmp_path / str(side_by_side), plan, script, schedule=schedule)
        assert run.scheduler.run() == "succeeded"
        events = run.observer.events
        started = events.index(("flow_started", "g"))
        assert (started < events.index(("flow_ended", "f", "succeeded"))) == side_by_side


def mapped(**options: Any) -> Task:
    spec = MapSpec("files", "item", options.pop("limit", 10))
    entry = ProcessEntry("each", Location("p.yml", 1, 1, "x"), map=spec)
    outputs = Outputs("one", ("results",))
    return Task(
        "f", "s2", "each", "each", MappingProxyType({}), outputs=outputs, map=spec, entry=entry,
        **options,
    )  # fmt: skip


def test_a_mapped_task_runs_once_per_element_and_collects_the_outputs_in_order(tmp_path):
    lister = declared("s1", "list", writes=["files"])
    after = declared("s3", "after", reads=["results"])
    plan = plan_of(("f", [[lister], [mapped()], [after]]))
    script = {"f.s1.list": ["list:files=b;a;c"], **{f"f.s2.each[{k}]": ["echo"] for k in "abc"}}
    for schedule in (None, dataflow(plan)):
        run = Run(tmp_path / str(bool(schedule)), plan, script, schedule=schedule)
        assert run.scheduler.run() == "succeeded"
        ((parent, elements),) = run.observer.of("task_mapped")
        assert parent == "f.s2.each"
        assert [t.key for t in elements] == ["f.s2.each[b]", "f.s2.each[a]", "f.s2.each[c]"]
        assert run.outcomes["f.s2.each"].status == "mapped"
        assert run.variables.value("f", "results") == ["bb", "aa", "cc"]
        assert run.status("f.s3.after") == ("succeeded", 1, False)
        # each element's own content is what its attempt read of the variable
        (read,) = run.scheduler.attempts["f.s2.each[a]"].reads
        assert read[0] == "files[a]" and read[1] == run.variables.hash_of("f", "files[a]")


def test_error_tolerance_counts_each_element(tmp_path):
    lister = declared("s1", "list", writes=["files"])
    plan = plan_of(("f", [[lister], [mapped(error_tolerance=True)]]))
    script = {"f.s1.list": ["list:files=a;b;c"], "f.s2.each[b]": ["fail"]}
    script.update({"f.s2.each[a]": ["echo"], "f.s2.each[c]": ["echo"]})
    run = Run(tmp_path / "1", plan, script)
    assert run.scheduler.run() == "succeeded"
    assert run.status("f.s2.each[b]") == ("failed", 1, True)
    assert run.variables.value("f", "results") == ["aa", "cc"]  # what failed is left out
    plan = plan_of(("f", [[declared("s1", "list", writes=["files"])], [mapped()],
                          [declared("s3", "after", reads=["results"])]]))  # fmt: skip
    run = Run(tmp_path / "2", plan, script)
    assert run.scheduler.run() == "failed"
    parent = run.outcomes["f.s2.each"]
    assert parent.status == "mapped" and not parent.blocking
    assert parent.error is not None and "1 of 3 elements failed (each[b])" in parent.error.message
    assert run.status("f.s3.after") == ("not started", 0, False)
    assert "results" not in run.committed("f")


def test_a_map_that_cannot_fan_out_fails_with_its_reason(tmp_path):
    plan = plan_of(("f", [[declared("s1", "list", writes=["files"])], [mapped(limit=2)]]))
    run = Run(tmp_path, plan, {"f.s1.list": ["list:files=a;b;c"]})
    assert run.scheduler.run() == "failed"
    failed = run.outcomes["f.s2.each"]
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.type == "MapError" and "more than max_map (2)" in failed.error.message
    assert run.observer.of("task_mapped") == []


def test_the_scheduler_wakes_when_an_observer_is_due_not_only_at_news(tmp_path):
    """Records kept to be written together are written within their delay, even while
    nothing ends for much longer (the history shows a long task as started at once)."""
    plan = plan_of(("f", [[task("f", "s", "long")]]))
    woken: list[float] = []
    owed = iter([0.05])  # the first wait leaves records to write in 0.05 s, then none

    class Timed(RunObserver):
        def waiting(self) -> None:
            woken.append(time.monotonic())

    run = Run(tmp_path, plan, {"f.s.long": ["slow:1.0"]}, due=lambda: next(owed, None))
    run.scheduler.events = EventBus([Timed()])
    run.scheduler._attempts.events = run.scheduler.events
    begun = time.monotonic()
    assert run.scheduler.run() == "succeeded"
    # one wake at the first wait, one for the records owed (well before the task ends)
    assert len(woken) >= 2 and woken[1] - begun < 0.9, [w - begun for w in woken]


def test_the_recorder_writes_a_burst_of_events_together_and_says_when_it_owes_a_write():
    from normandy_core.execution._recorder import FLUSH_EVERY, HistoryRecorder

    class History:
        flushes = 0

        def flush(self) -> None:
            History.flushes += 1

        def heartbeat(self, run_id: str, when: float) -> None:
            pass

    recorder = HistoryRecorder(History(), "r", lambda level, text: None)  # type: ignore[arg-type]
    assert recorder.due() is None
    recorder.waiting()
    assert History.flushes == 1 and recorder.due() is None
    recorder.waiting()  # at once again: kept, and owed within FLUSH_EVERY
    assert History.flushes == 1
    owed = recorder.due()
    assert owed is not None and 0 <= owed <= FLUSH_EVERY
    time.sleep(owed + 0.01)
    recorder.waiting()
    assert History.flushes == 2 and recorder.due() is None


class _Unscannable(dict):  # type: ignore[type-arg]
    def values(self):  # type: ignore[override]
        raise AssertionError("every pending attempt was looked at to announce one")


def test_announcing_a_started_attempt_looks_at_that_attempt_only(tmp_path):
    """A worker's start notice found its attempt by building a map of every attempt
    pending: a step of 10,000 tasks (a map's elements) built it for every notice, a
    sixth of the orchestrator's time. The attempts pending are now known by key."""
    tasks = [task("f", "s1", f"t{i}") for i in range(50)]
    run = Run(tmp_path, plan_of(("f", [tasks])), {t.key: ["hang"] for t in tasks})
    attempts = run.scheduler._attempts
    for t in tasks:
        attempts.submit(t)
    attempts.pending = _Unscannable(attempts.pending)
    attempts.announce([(tasks[7].key, 1, 4242, time.time()), ("f.s1.gone", 1, 1, 0.0)])
    started = run.observer.of("task_started")
    assert [(key, attempt, pid) for key, attempt, pid, _ in started] == [(tasks[7].key, 1, 4242)]
