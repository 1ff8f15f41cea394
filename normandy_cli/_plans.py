"""What ``normandy run`` prints besides its progress: the plan of a dry run, and the
decisions of ``--explain`` (run or reuse, and why)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from normandy_core.execution import Decision
    from normandy_core.plan import Plan, Task


def describe_plan(plan: Plan, env: str, shown: dict[str, Any], schedule: str = "steps") -> str:
    """The plan as people read it: flows, steps, tasks and their params (as in ``shown``,
    the plan's ``to_dict()`` with credentials masked); a mapped task, and what it maps
    over; the schedule, where it is ``dataflow``."""
    # in plan order: a key holding a masked value is no key to look up by
    params_of = {
        task.key: shown_task["params"]
        for task, shown_task in zip(
            plan.tasks(),
            (task for flow in shown["flows"] for step in flow["steps"] for task in step["tasks"]),
            strict=True,
        )
    }
    sel = plan.selection
    chosen = (
        f"flows {', '.join(sel.flows)}" if sel.flows else f"tags {', '.join(sel.effective_tags)}"
    )
    mapped = sum(1 for task in plan.tasks() if task.map is not None)
    count = f"{len(plan) - mapped} task{'s' * (len(plan) - mapped != 1)}"
    if mapped:
        their = "their" if mapped > 1 else "its"
        count += f" and {mapped} mapped ({their} tasks known at run time)"
    lines = [
        f"Plan: {count} in {len(plan.flows)} flow{'s' * (len(plan.flows) != 1)} "
        f"({chosen}; env {env}) — dry run, nothing runs"
    ]
    if schedule == "dataflow":
        lines.append(
            "schedule: dataflow — each task starts once what it reads is written; flows that "
            "share no data run side by side"
        )
    if shown.get("env_params"):
        params = json.dumps(shown["env_params"], default=str, sort_keys=True)
        lines.append(f"env {env} params, over every entry's (--param over them): {params}")
    for flow in plan.flows:
        lines.append(f"\nflow {flow.name}  [tags: {', '.join(flow.tags) or '-'}]")
        for n, step in enumerate(flow.steps, 1):
            skipped = (
                f"  (skipped by avoid_tags: {', '.join(step.skipped)})" if step.skipped else ""
            )
            scope = step.tasks[0].scope if step.tasks else None
            made = f"  (template {scope.template}, namespace {scope.namespace})" if scope else ""
            lines.append(f"  step {n} {step.name}: {len(step.tasks)} in parallel{skipped}{made}")
            for task in step.tasks:
                options = []
                if task.error_tolerance:
                    options.append("error_tolerance")
                if task.retries:
                    options.append(f"retries={task.retries}")
                if task.timeout is not None:
                    options.append(f"timeout={task.timeout:g}s")
                for pool, units in task.pools.items():
                    options.append(f"pool {pool}" + (f" ×{units}" if units > 1 else ""))
                params = json.dumps(params_of[task.key], default=str, sort_keys=True)
                extra = f"  [{', '.join(options)}]" if options else ""
                runs = task.process if task.process != task.name.partition("[")[0] else ""
                runs = f" ({runs})" if runs else ""
                lines.append(f"    - {task.name}{runs}  params={params}{extra}")
                if task.map is not None:
                    lines.append(
                        f"      mapped over {task.map.variable}: one task per element "
                        f"({task.name}[KEY], at most {task.map.limit:,}), their count known "
                        "only at run time"
                    )
                bound = describe_bindings(task)
                if bound:
                    lines.append(f"      inputs: {bound}")
    return "\n".join(lines)


def describe_bindings(task: Task) -> str:
    """What the entry maps to the process's arguments other than a variable of another
    name (params, several variables), as written: ``parameters=params.model_options``."""
    from normandy_core.binding import describe_source

    shown = []
    for name, source in task.inputs.items():
        if not isinstance(source, str):
            value = describe_source(source)
            shown.append(f"{name}={value if isinstance(value, str) else json.dumps(value)}")
    return ", ".join(shown)


def verdict(task: Task, reused_from: str | None, reason: str) -> str:
    """One line of ``--explain``: ``flow.step.task: reuse RUN_ID``, ``…: run (why)``, or
    (``--dry-run`` only) ``…: run or reuse: reads NAME, which TASK writes in this run``."""
    if reused_from is not None:
        return f"{task.key}: reuse {reused_from}"
    if reason.startswith("run or reuse"):
        return f"{task.key}: {reason}"
    return f"{task.key}: run ({reason})"


def describe_decisions(decisions: Iterable[Decision]) -> str:
    """``--dry-run --explain``: what would run, what would be reused, and why."""
    lines = []
    for d in decisions:
        lines.append(verdict(d.task, d.success.origin if d.success else None, d.reason))
    return "\n".join(lines)
