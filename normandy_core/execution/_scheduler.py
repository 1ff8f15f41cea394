"""Scheduling a run (SPEC 7, 19): which tasks start when, on an executor; retries after a
delay, tolerated failures, ``keep_going``; units of pools held while tasks run; mapped
tasks fanning out.

The scheduler decides what to run next and how each attempt ended; what a task's end
lets start is its flow's to say (:mod:`._flowrun`: steps one after another, or each task
once what it reads is written), a mapped task's elements are :mod:`._maps`' and the
pools' units :mod:`._pools`'. Flows run one after another, or side by side where they
share no data (``confs.schedule: dataflow``). What happens is told to observers through
an :class:`~normandy_core.execution._events.EventBus` (the history, the log files, the
hooks and the displays follow it that way) and the variables of each attempt are handed
to :class:`~normandy_core.execution._variables.RunVariables`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future

from normandy_core._inbox import Inbox
from normandy_core.dependencies import Schedule, schedule_of
from normandy_core.execution._attempts import Attempts, MakeCall, describe_error
from normandy_core.execution._events import EventBus
from normandy_core.execution._flowrun import DataGate, FlowRun, StepGate
from normandy_core.execution._maps import Maps
from normandy_core.execution._pools import Pools
from normandy_core.execution._reuse import Decision, Reuse
from normandy_core.execution._variables import RunVariables
from normandy_core.executors import Executor
from normandy_core.mapping import MapError
from normandy_core.outcomes import Attempt, Outcome, TaskError
from normandy_core.plan import Plan, Task
from normandy_core.status import CACHED, FAILED, INTERRUPTED, SUCCEEDED
from normandy_core.worker import TaskResult

__all__ = ["MakeCall", "Scheduler", "describe_error"]

class Scheduler:
    """Runs ``plan`` on a started ``executor``; ``outcomes`` (by task key) are updated as
    tasks end (a mapped task's elements are added as it fans out); ``schedule`` says in
    which order (``steps`` by default), ``pools`` how many units each pool has."""

    def __init__(
        self,
        plan: Plan,
        executor: Executor,
        outcomes: dict[str, Outcome],
        variables: RunVariables,
        events: EventBus,
        make_call: MakeCall,
        *,
        executor_name: str = "",
        keep_going: bool = False,
        resumed_from: str = "",
        wake_every: float | None = None,
        inbox: Inbox | None = None,
        reuse: Reuse | None = None,
        module_of: Callable[[Task], Sequence[str]] | None = None,
        schedule: Schedule | None = None,
        pools: Mapping[str, int] | None = None,
        due: Callable[[], float | None] | None = None,
    ) -> None:
        self.plan = plan
        self.executor = executor
        self.outcomes = outcomes
        self.variables = variables
        self.events = events
        self.make_call = make_call
        self.keep_going = keep_going
        self.resumed_from = resumed_from
        self.wake_every = wake_every
        """Wake at least this often while tasks run (a ``waiting`` event each time)."""
        self.reuse = reuse
        """Fingerprints the tasks and decides which earlier successes stand for them."""
        self.due = due or (lambda: None)
        """Seconds until an observer must be told ``waiting`` again (the history's
        records kept to be written together); ``None``: no sooner than usual."""
        self.inbox = inbox or Inbox()
        """Where ended attempts and start notices arrive (the log thread's notices too)."""
        self._tags = {flow.name: flow.tags for flow in plan.flows}
        self._attempts = Attempts(
            executor, executor_name, outcomes, variables, events, make_call, self.inbox, reuse,
            self._tags,
        )  # fmt: skip
        self.module_of = module_of
        """A task's modules, for the executor to import ahead (:meth:`Executor.prepare`):
        its process's, then those it imported when it last ran; ``None``: none is."""
        self.schedule = schedule or schedule_of(plan, None)
        self.pools = Pools(pools or {})
        self.maps = Maps(variables, outcomes, reuse)
        self.status = SUCCEEDED
        self._flows: dict[str, FlowRun] = {}
        self._waiting_flows = [flow.name for flow in plan.flows]
        self._ready: deque[Task] = deque()
        self._retry_at: list[tuple[float, Task]] = []
        self._steps = [s for f in plan.flows for s in f.steps]
        self._step_index = {(s.flow, s.name): i for i, s in enumerate(self._steps)}
        self._ahead_step = -1  # the last step whose modules the executor was told of
        self._asked: set[str] = set()
        """The modules the executor was told to import ahead, so far."""
        self._warm = False
        self._ahead = False  # the processes' code fingerprinted ahead (see _drain)

    @property
    def attempts(self) -> dict[str, Attempt]:
        """Task key -> its current (or last) attempt."""
        return self._attempts.current

    def run(self) -> str:
        """Run every flow; the run's status: ``succeeded`` or ``failed``."""
        self._start_flows()
        self._drain()
        pending = self._attempts.pending
        while pending or self._retry_at:
            now = time.time()
            for due, task in [r for r in self._retry_at if r[0] <= now]:
                self._retry_at.remove((due, task))
                self._launch(task)
            self.events.waiting()
            next_retry = min(d for d, _ in self._retry_at) - now if self._retry_at else None
            timeout = min(
                (t for t in (next_retry, self.wake_every, self.due()) if t is not None),
                default=None,
            )
            if not pending:
                time.sleep(max(0.0, timeout or 0.0))
                continue
            news = self.inbox.wait(None if timeout is None else max(0.0, timeout))
            self._attempts.announce(news.started)
            self._settle(news.ended)
            self._drain()
        if self._waiting_flows or any(not f.done for f in self._flows.values()):
            raise RuntimeError("the scheduler stopped with tasks that can never start")
        return self.status

    def interrupt(self) -> None:
        """The run was stopped (Ctrl-C): every attempt still running is interrupted, and
        every mapped task whose elements were running."""
        now = time.time()
        for outcome in self._attempts.interrupted(now):
            self.events.task_ended(outcome)
        for outcome in self.maps.interrupted():
            outcome.status, outcome.ended = INTERRUPTED, now
            self.events.task_ended(outcome)

    # -- flows ------------------------------------------------------------------------------

    def _start_flows(self) -> None:
        """Start (or skip) the flows whose turn has come: every flow they wait for ended."""
        for name in list(self._waiting_flows):
            after = self.schedule.after.get(name, set())
            if any(f in self._waiting_flows or not self._flows[f].done for f in after):
                continue
            self._waiting_flows.remove(name)
            flow = next(f for f in self.plan.flows if f.name == name)
            gate: FlowRun
            if self.schedule.dataflow:
                gate = DataGate(flow, self.events, self.variables, self.schedule.waits[name])
            else:
                gate = StepGate(flow, self.events, self.variables)
            self._flows[name] = gate
            if self.status == FAILED and not self.keep_going:
                gate.stopped.update(t.key for s in gate.steps for t in s.tasks)
                for step in gate.steps:
                    step.left.clear()
                self.events.flow_skipped(flow)
                continue
            self.events.flow_started(flow)
            self._ready.extend(gate.start())
            if gate.done:
                self._flow_ended(gate)

    def _flow_ended(self, gate: FlowRun) -> None:
        status = FAILED if gate.failed else SUCCEEDED
        if gate.failed:
            self.status = FAILED
        self.events.flow_ended(gate.flow, status)
        self._start_flows()

    # -- tasks that may start ---------------------------------------------------------------

    def _drain(self) -> None:
        """Start what may start: decide whether each task runs or is reused, fan mapped
        tasks out, and hand the tasks that run to the executor (through their pools)."""
        while self._ready:
            batch = list(self._ready)
            self._ready.clear()
            running = []
            for task in batch:
                if task.map is not None:
                    self._fan_out(task)
                elif not self._decided(task):
                    running.append(task)
            if not running:
                continue
            if not self._warm:  # decided first: a run all reused starts nothing
                self._warm = True
                self.executor.warm_up()
            self._prepare(running)  # before its tasks: their workers start with their modules
            for task in running:
                self._launch(task)
            self._prepare_ahead(running)
            if self.reuse is not None and not self._ahead:
                # while the first workers start (the fork server imports the process
                # modules for them), not later between two steps: parsing every process
                # module and looking up its libraries' versions
                self.reuse.code_ahead(self.plan.tasks())
                self._ahead = True

    def _decided(self, task: Task) -> bool:
        """Whether an earlier success stands for ``task`` (then it has ended)."""
        if self.reuse is None:
            return False
        decision = self.reuse.decide(task)
        self.outcomes[task.key].reason = decision.reason
        origin = decision.success.origin if decision.success is not None else None
        self.events.task_decided(task, origin, decision.reason)
        if decision.reused:
            self._cached(decision)
        return decision.reused

    def _modules(self, tasks: Iterable[Task]) -> tuple[str, ...]:
        """The modules ``tasks`` import: every task's process module first (their workers
        need them at once), then what they learned."""
        if self.module_of is None:
            return ()
        each = [self.module_of(task) for task in tasks]
        return tuple(dict.fromkeys([m[0] for m in each if m] + [n for m in each for n in m[1:]]))

    def _prepare(self, tasks: Iterable[Task]) -> None:
        """Tell the executor the modules ``tasks`` import, if any."""
        modules = self._modules(tasks)
        if modules:
            self._asked.update(modules)
            self.executor.prepare(modules)

    def _prepare_after(self, index: int) -> None:
        """While step ``index`` runs: the modules of the next step, and those of the first
        step after it whose process modules were not asked for yet (a later flow's, where
        the steps between use modules imported already: scikit-learn imported while the
        flow before the models runs, not when the models' flow starts)."""
        later = self._steps[index + 1 :]
        if later:
            self._prepare(later[0].tasks)
        module_of = self.module_of
        if module_of is None:
            return
        for step in later[1:]:
            if any(m[:1] and m[0] not in self._asked for m in map(module_of, step.tasks)):
                self._prepare(step.tasks)
                return

    def _prepare_ahead(self, running: list[Task]) -> None:
        """The modules of the step after the latest one started, imported meanwhile;
        under ``dataflow``, where any task may start as soon as its inputs are written,
        those of every task of the flows started, in plan order."""
        if self.schedule.dataflow:
            if self._ahead_step < len(self._steps):
                self._ahead_step = len(self._steps)
                self._prepare(t for f in self.plan.flows for s in f.steps for t in s.tasks)
            return
        latest = max(self._step_index[(task.flow, task.step)] for task in running)
        if latest > self._ahead_step and latest + 1 < len(self._steps):
            self._ahead_step = latest
            self._prepare_after(latest)

    def _done(self, outcome: Outcome) -> None:
        """``outcome.task`` ended: tell its flow, which says what may start now."""
        self.events.task_ended(outcome)
        task = outcome.task
        gate = self._flows[task.flow]
        self._ready.extend(gate.ended(outcome))
        if task.element is not None:
            mapped = self.maps.element_ended(task)
            if mapped is not None:
                self._done(self.maps.end(mapped))
                return
        if gate.done:
            self._flow_ended(gate)

    # -- mapped tasks -----------------------------------------------------------------------

    def _fan_out(self, task: Task) -> None:
        try:
            elements = self.maps.expand(task)
        except MapError as exc:
            self._done(self.maps.failed(task, exc))
            return
        self.events.task_mapped(task, elements)
        self._flows[task.flow].add(task, elements)
        if elements:
            self._ready.extend(elements)
        else:
            self._done(self.maps.end(task))

    # -- attempts ---------------------------------------------------------------------------

    def _cached(self, decision: Decision) -> None:
        """An earlier success stands for the task: its variables are bound, it is done."""
        assert self.reuse is not None and decision.success is not None
        task, success = decision.task, decision.success
        outcome = self.outcomes[task.key]
        outcome.variables = self.reuse.bind(decision)
        now = time.time()
        outcome.status, outcome.started, outcome.ended = CACHED, now, now
        outcome.cached_from, outcome.fingerprint = success.origin, success.fingerprint
        outcome.resumed = self.reuse.force
        outcome.writes = tuple(
            (w.name, w.hash or "", w.size or 0, w.type or "") for w in success.writes
        )
        conflict = self.variables.attempt_succeeded(task, outcome.writes)
        if conflict is not None:  # two tasks of the step write one name: as when they run
            error = TaskError(FAILED, "VariableConflict", conflict)
            outcome.status, outcome.error, outcome.cached_from = FAILED, error, None
            outcome.tolerated = task.error_tolerance
        elif self.reuse.force:  # --resume: what succeeded there is not run again
            self.events.task_resumed(task, success.origin)
        else:
            self.events.task_cached(task, success.origin)
        self._done(outcome)

    def _launch(self, task: Task) -> None:
        """Submit an attempt of ``task`` once it holds the units of its pools."""
        pool = self.pools.take(task)
        if pool is None:
            self._attempts.submit(task)
        else:
            self.events.task_waiting(task, pool)

    # -- how attempts end -------------------------------------------------------------------

    def _settle(self, done: set[Future[TaskResult]]) -> None:
        """Settle the attempts that ended: success, retry later, or failure; then what
        waited for their pools' units."""
        admitted: list[Task] = []
        for future in done:
            task, error = self._attempts.finish(future)
            admitted += self.pools.give_back(task)
            if error is None:
                self._done(self.outcomes[task.key])
                continue
            outcome = self.outcomes[task.key]
            if outcome.attempts <= task.retries:
                self.events.task_retrying(task, outcome.attempts, error, task.retry_delay)
                self._retry_at.append((time.time() + task.retry_delay, task))
            else:
                outcome.status, outcome.error = error.kind, error
                outcome.tolerated = task.error_tolerance
                self._done(outcome)
        for task in admitted:
            self._attempts.submit(task, self.pools.waited(task))
