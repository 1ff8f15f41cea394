"""``normandy run``: plan the selected flows and run them (or print the plan with --dry-run)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
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
from normandy_cli._output import err, json_text, plural, reports_errors, secs
from normandy_cli._plans import describe_decisions, describe_plan, verdict
from normandy_core.events import RunObserver

if TYPE_CHECKING:
    from normandy_core.execution import RunOptions
    from normandy_core.logs import Console
    from normandy_core.plan import Plan, Task
    from normandy_core.project import Checked, Project


PatternsOpt = list[str] | None


def _patterns(flag: str, text: str) -> Any:
    return typer.Option(flag, metavar="PATTERN", help=text, show_default=False)


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
            help="Run a recorded run again (its flows, env and params; --param over them), "
            "reusing every success whose fingerprint is unchanged.",
        ),
    ] = None,
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="Run every task, whatever its fingerprint."),
    ] = False,
    rerun: Annotated[
        PatternsOpt, _patterns("--rerun", "Run these tasks whatever their fingerprint.")
    ] = None,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Say, for each task, run or reuse RUN_ID, and why."),
    ] = False,
    start: Annotated[
        PatternsOpt, _patterns("--from", "Run from this step or task on (step, step.task).")
    ] = None,
    end: Annotated[PatternsOpt, _patterns("--to", "Run up to this step or task.")] = None,
    only: Annotated[PatternsOpt, _patterns("--only", "Run only these steps or tasks.")] = None,
    load_version: Annotated[
        list[str] | None,
        typer.Option(
            "--load-version",
            metavar="DATASET=RUN_ID",
            help="Load this version of a versioned dataset (the one run RUN_ID wrote) "
            "instead of the latest (repeatable).",
            show_default=False,
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
    if not dry_run:
        # before the project's plugin modules are imported here: what they read then is
        # read by their tasks, where they run here (serial)
        from normandy_core._tracing import install

        install()
    # the fork server starts now, while the project is read and checked: its interpreter
    # and the worker's code are ready by the time the first task is
    head_start = None
    if not dry_run and executor in (None, "local"):
        from normandy_core.executors.local import start_fork_server

        head_start = start_fork_server()
    try:
        from normandy_core.execution import RunOptions, explain_plan
        from normandy_core.plan import Selection
        from normandy_core.prepare import prepare_run
        from normandy_core.project import open_project

        if resume and (tags or flow or env):
            raise typer.BadParameter(
                "--resume runs the flows and env of the run it resumes; do not give --tags, "
                "--flow or --env with it (--param may change its params)",
                param_hint="--resume",
            )
        proj = open_project(project)
        selection = Selection(tuple(tags or ()), tuple(flow or ()), parse_params(param))
        prepared = prepare_run(
            proj,
            selection,
            env,
            executor=executor,
            resume=resume,
            part=(tuple(start or ()), tuple(end or ()), tuple(only or ())),
            load_versions=_load_versions(load_version),
            rerun=tuple(rerun or ()),
        )
        for b in prepared.borrowed:
            if b.read:  # what no task of the part reads is there, unsaid
                err(b.describe())
        engine = executor or proj.config.executor
        options = RunOptions(
            executor=engine,
            address=address,
            workers=workers,
            log_level=log_level or proj.config.log_level,
            keep_going=keep_going,
            resume=prepared.resume,
            console_events=False,
            no_cache=no_cache,
            rerun=tuple(rerun or ()),
            borrowed=prepared.borrowed,
            quiet_once_recorded=True,  # the exit status is the record's
            head_start=head_start,
        )
        if dry_run:
            env_params = proj.config.envs[prepared.checked.env].params
            _dry_run(
                prepared.plan, prepared.checked, as_json, proj.config.schedule, dict(env_params)
            )
            if explain:
                decisions = explain_plan(proj, prepared.plan, prepared.checked, options)
                err("what would run, and why (nothing runs):\n" + describe_decisions(decisions))
            return
        if address and engine in ("local", "serial"):
            raise typer.BadParameter(
                f"--address is the scheduler of a cluster; the executor {engine!r} runs on this "
                "machine (use it with --executor dask)",
                param_hint="--address",
            )
        _run(proj, prepared.plan, prepared.checked, options, no_progress, explain, as_json)
    finally:  # not adopted (another engine, a run that never started): not left behind,
        # and not waited for: it holds nothing, and may still be importing the worker's code
        if head_start is not None and not head_start.adopted:
            head_start.kill()
            head_start.close()


def _load_versions(items: list[str] | None) -> dict[str, str]:
    """``["model=20261125-061530.123-a3f2"]`` -> ``{"model": "20261125-061530.123-a3f2"}``."""
    found: dict[str, str] = {}
    for item in items or ():
        name, sep, version = (part.strip() for part in item.partition("="))
        if not sep or not name or not version:
            raise typer.BadParameter(
                f"{item!r} is not DATASET=RUN_ID (the run whose version of DATASET to load)",
                param_hint="--load-version",
            )
        if name in found and found[name] != version:
            raise typer.BadParameter(
                f"two versions of {name!r}: {found[name]} and {version}; give one",
                param_hint="--load-version",
            )
        found[name] = version
    return found


def _dry_run(
    plan: Plan, checked: Checked, as_json: bool, schedule: str, env_params: dict[str, Any]
) -> None:
    from normandy_core.masking import Masker, mask_values, secret_values

    # a param holding a credential value is shown masked (SPEC 11); without credentials,
    # there is nothing to look for in 10,000 tasks' params
    shown = {"env_params": env_params, **plan.to_dict()}
    secrets = secret_values(checked.credentials)
    if secrets:
        shown = mask_values(shown, Masker(secrets))
    if as_json:
        document = {"env": checked.env, "schedule": schedule, **shown}
        typer.echo(json.dumps(document, indent=2, default=str))
    else:
        typer.echo(describe_plan(plan, checked.env, shown, schedule))


def _run(
    proj: Project,
    plan: Plan,
    checked: Checked,
    options: RunOptions,
    no_progress: bool,
    explain: bool,
    as_json: bool,
) -> None:
    from normandy_cli._progress import counted_tasks, describe_counts, open_progress
    from normandy_core.errors import display_path
    from normandy_core.execution import run_plan
    from normandy_core.logs import level_number

    try:
        level_number(options.log_level)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--log-level") from None
    progress = open_progress(no_progress)
    options.console = progress
    options.observers = [progress, *([_Explain(progress)] if explain else [])]
    with progress, _collector_tuned():
        summary = run_plan(proj, plan, checked, options)
    progress.print_summary(summary)
    resumed = options.resume
    resumed_note = f" (resuming {resumed.run_id})" if resumed else ""
    err(
        f"{plural(counted_tasks(summary), 'task')} in {secs(summary.duration)}: "
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
    collected = summary.collected
    if collected is not None and collected.runs:
        kept = proj.config.keep_runs
        why = f"confs.keep_runs: {kept}" if kept is not None else "the last 20 runs by default"
        err(f"normandy gc: {collected.describe()} ({why})")
    if as_json:
        typer.echo(json_text(summary.to_dict()))
    raise typer.Exit(summary.exit_code)


@contextlib.contextmanager
def _collector_tuned() -> Iterator[None]:
    """For the run: what the command imported and read is kept out of the garbage
    collector's way (``gc.freeze``), and the youngest objects are collected after 20,000
    allocations rather than 700. A run makes a few records per task, most of them kept to
    its end: a rerun of 2,000 reused tasks spent 50 ms in 225 collections, now 20 ms in
    65. Put back after it (a caller may run the command in its own process)."""
    import gc

    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(20_000, 20, 10)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


class _Explain(RunObserver):
    """``--explain``: each task's decision, as its step starts, on the console."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def task_decided(self, task: Task, reused_from: str | None, reason: str) -> None:
        self.console.write(f"explain: {verdict(task, reused_from, reason)}\n")
