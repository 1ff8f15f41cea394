"""``normandy run``: plan the selected flows and run them (or print the plan with --dry-run)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from normandy_cli._options import (
    EnvOpt,
    FlowsOpt,
    JsonOpt,
    ParamOpt,
    ProjectOpt,
    TagsOpt,
    parse_params,
)
from normandy_cli._output import err, plural, reports_errors, secs

if TYPE_CHECKING:
    from normandy_core.plan import Plan


@reports_errors
def run(
    tags: TagsOpt = None,
    flow: FlowsOpt = None,
    env: EnvOpt = None,
    param: ParamOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            help="Worker processes (default: confs.workers, else the CPU count).",
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option("--log-level", help="debug, info, warnings, errors (or warning, error)."),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option("--executor", help="local, serial, dask, or an engine added by a plugin."),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            metavar="tcp://HOST:8786",
            help="Scheduler of an existing cluster for --executor dask (default: "
            "confs.dask.address, else a local cluster for the run).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; run nothing.")
    ] = False,
    keep_going: Annotated[
        bool, typer.Option("--keep-going", help="Start the next flows even when one fails.")
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="RUN_ID|last",
            help="Run a failed run again, skipping what succeeded.",
        ),
    ] = None,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="Plain lines instead of the live view.")
    ] = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the flows selected by --tags (default: the tag 'default') or --flow.

    Progress goes to stderr: a live view on a terminal, one line per event otherwise (or
    with --no-progress); a summary of every task ends the run."""
    if not dry_run and executor in (None, "local"):
        # The local pool's fork server boots while the project is loaded and checked. If
        # the project turns out to use another executor, the idle server ends with us.
        from normandy_core.executors import warm_up

        warm_up()
    from normandy_cli._progress import describe_counts, open_progress
    from normandy_core.errors import display_path
    from normandy_core.execution import RunOptions, run_plan
    from normandy_core.logs import level_number
    from normandy_core.plan import Selection
    from normandy_core.prepare import prepare_run
    from normandy_core.project import open_project

    if resume and (tags or flow or param or env):
        raise typer.BadParameter(
            "--resume reuses the tags, flows, params and env of the run it resumes; "
            "do not give --tags, --flow, --param or --env with it",
            param_hint="--resume",
        )
    proj = open_project(project)
    selection = Selection(tuple(tags or ()), tuple(flow or ()), parse_params(param))
    prepared = prepare_run(proj, selection, env, executor=executor, resume=resume)
    if prepared.nothing_to_do:
        err(f"normandy: {prepared.nothing_to_do}")
        return
    plan, checked, resumed = prepared.plan, prepared.checked, prepared.resume
    if dry_run:
        from normandy_core.masking import Masker, mask_values, secret_values

        # a param holding a credential value is shown masked (SPEC 11)
        shown = mask_values(plan.to_dict(), Masker(secret_values(checked.credentials)))
        if as_json:
            typer.echo(json.dumps({"env": checked.env, **shown}, indent=2, default=str))
        else:
            typer.echo(describe_plan(plan, checked.env, shown))
        return
    engine = executor or proj.config.executor
    if address and engine in ("local", "serial"):
        raise typer.BadParameter(
            f"--address is the scheduler of a cluster; the executor {engine!r} runs on this "
            "machine (use it with --executor dask)",
            param_hint="--address",
        )
    progress = open_progress(no_progress)
    options = RunOptions(
        executor=engine,
        address=address,
        workers=workers,
        log_level=log_level or proj.config.log_level,
        keep_going=keep_going,
        resume=resumed,
        console=progress,
        observers=[progress],
        console_events=False,
    )
    try:
        level_number(options.log_level)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--log-level") from None
    with progress:
        summary = run_plan(proj, plan, checked, options)
    progress.print_summary(summary)
    resumed_note = f" (resuming {resumed.run_id})" if resumed else ""
    err(
        f"{plural(len(summary.outcomes), 'task')} in {secs(summary.duration)}: "
        f"{describe_counts(progress.counts)}"
    )
    err(
        f"run {summary.run.id}{resumed_note} {summary.status}; logs in "
        f"{display_path(summary.log_dir)}"
    )
    if summary.reason:
        err(f"normandy: the run ended early: {summary.reason}")
    if summary.status != "succeeded":
        err(f"see what happened: normandy report {summary.run.id}")
    if summary.status == "failed":
        err(f"fix the cause, then: normandy run --resume {summary.run.id}")
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    raise typer.Exit(summary.exit_code)


def describe_plan(plan: Plan, env: str, shown: dict[str, Any]) -> str:
    """The plan as people read it: flows, steps, tasks and their params (as in ``shown``,
    the plan's ``to_dict()`` with credentials masked)."""
    params_of = {
        task["key"]: task["params"]
        for flow in shown["flows"]
        for step in flow["steps"]
        for task in step["tasks"]
    }
    sel = plan.selection
    chosen = (
        f"flows {', '.join(sel.flows)}" if sel.flows else f"tags {', '.join(sel.effective_tags)}"
    )
    lines = [
        f"Plan: {len(plan)} task{'s' * (len(plan) != 1)} in {len(plan.flows)} "
        f"flow{'s' * (len(plan.flows) != 1)} ({chosen}; env {env}) — dry run, nothing runs"
    ]
    for flow in plan.flows:
        lines.append(f"\nflow {flow.name}  [tags: {', '.join(flow.tags) or '-'}]")
        for n, step in enumerate(flow.steps, 1):
            skipped = (
                f"  (skipped by avoid_tags: {', '.join(step.skipped)})" if step.skipped else ""
            )
            lines.append(f"  step {n} {step.name}: {len(step.tasks)} in parallel{skipped}")
            for task in step.tasks:
                options = []
                if task.error_tolerance:
                    options.append("error_tolerance")
                if task.retries:
                    options.append(f"retries={task.retries}")
                if task.timeout is not None:
                    options.append(f"timeout={task.timeout:g}s")
                params = json.dumps(params_of[task.key], default=str, sort_keys=True)
                extra = f"  [{', '.join(options)}]" if options else ""
                lines.append(f"    - {task.name}  params={params}{extra}")
    return "\n".join(lines)
