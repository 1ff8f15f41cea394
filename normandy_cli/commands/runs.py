"""``normandy runs [RUN_ID]``: the run history (status, duration, tasks counted by how they
ended, the task that failed), and one run's tasks."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from normandy_cli._options import JsonOpt, ProjectOpt
from normandy_cli._output import imports_shown, json_text, reports_errors, secs, table, when


@reports_errors
def runs(
    run_id: Annotated[
        str | None, typer.Argument(metavar="[RUN_ID|last]", help="Show this run's tasks.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List recent runs (newest first), or the tasks of one run."""
    from normandy_core.history import History
    from normandy_core.roots import find_project_root

    root = find_project_root(project)
    history = History(root / ".normandy")
    try:
        if run_id is None:
            _list(history, limit, as_json, root)
        else:
            _show(history, run_id, as_json)
    finally:
        history.close()


def _list(history: Any, limit: int, as_json: bool, root: Path) -> None:
    from normandy_core.config import read_config
    from normandy_core.retention import run_sizes
    from normandy_core.status import FAILURES, describe_tally, tally
    from normandy_core.units import format_size

    records = history.runs(limit)
    config, _problems = read_config(root)
    sizes = run_sizes(
        root,
        config.store if config is not None else None,
        [r.id for r in records if r.pruned is None],
    )
    counts, failing = {}, {}
    for r in records:
        tasks = history.tasks(r.id)
        counts[r.id] = tally((t.status, t.tolerated, t.resumed) for t in tasks)
        failing[r.id] = next(
            (t.key for t in tasks if t.status in FAILURES and not t.tolerated), None
        )
    if as_json:
        out = [
            {
                **r.to_dict(),
                "counts": counts[r.id],
                "failing_task": failing[r.id],
                "size": sizes.get(r.id),
            }
            for r in records
        ]
        typer.echo(json_text(out))
        return
    if not records:
        typer.echo("No run is recorded yet: `normandy run` starts one.")
        return
    rows = [
        (
            r.id,
            r.status,
            when(r.started),
            secs(r.duration),
            r.selection,
            r.env,
            describe_tally(counts[r.id]),
            failing[r.id] or "-",
            format_size(sizes[r.id]) if r.id in sizes else "pruned",
        )
        for r in records
    ]
    headers = ["RUN", "STATUS", "STARTED", "DURATION", "SELECTION", "ENV", "TASKS"]
    typer.echo(table([*headers, "FAILING TASK", "SIZE"], rows))
    typer.echo(_store_line(root, config))


def _store_line(root: Path, config: Any) -> str:
    """The store's total size, and how many runs it keeps (SPEC 20)."""
    from normandy_core.retention import keep_runs, store_size
    from normandy_core.units import format_size

    setting = config.keep_runs if config is not None else None
    keep = keep_runs(setting)
    kept = "every run (confs.keep_runs: 0)" if not keep else f"the last {keep} runs"
    if setting is None and keep:
        kept += " (confs.keep_runs to change it)"
    size = format_size(store_size(root, config.store if config is not None else None))
    return f"store: {size} in all, variables and logs; it keeps {kept}"


def _show(history: Any, run_id: str, as_json: bool) -> None:
    from normandy_core.status import label

    record = history.get(run_id)
    tasks = history.tasks(record.id)
    if as_json:
        attempts = history.run_attempts(record.id)
        accesses = history.accesses(record.id)
        datasets = history.dataset_accesses(record.id)

        def lineage(key: str, direction: str) -> list[dict[str, Any]]:
            return [
                {"name": a.name, "hash": a.hash, "size": a.size, "type": a.type}
                for a in accesses.get(key, ())
                if a.direction == direction and (direction == "write" or a.hash is not None)
            ]

        out = {
            **record.to_dict(),
            "tasks": [
                {
                    **asdict(t),
                    "duration": t.duration,
                    "attempts_detail": [asdict(a) for a in attempts.get(t.key, ())],
                    "reads": lineage(t.key, "read"),
                    "writes": lineage(t.key, "write"),
                    "datasets": [
                        {k: v for k, v in asdict(d).items() if k not in ("run_id", "key", "ended")}
                        for d in datasets.get(t.key, ())
                    ],
                }
                for t in tasks
            ],
        }
        typer.echo(json_text(out, default=str))
        return
    resumed = f", resuming {record.resumed_from}" if record.resumed_from else ""
    typer.echo(f"run {record.id}: {record.status}{resumed}")
    typer.echo(
        f"  started {when(record.started)}, took {secs(record.duration)}; "
        f"{record.selection}; env {record.env}; executor {record.executor} "
        f"({record.workers} workers); normandy {record.version}; plan {record.fingerprint}"
    )
    if record.reason:
        typer.echo(f"  ended early: {record.reason}")
    for problem in record.log_problems:
        typer.echo(f"  log not written: {problem}")
    typer.echo("")
    imports = imports_shown(t.import_duration for t in tasks)
    rows = []
    for t in tasks:
        status = label(t.status, t.tolerated, t.resumed, t.cached_from)
        error = f"{t.error_type}: {t.error_message}" if t.error_type else ""
        rows.append(
            (
                t.flow,
                t.step,
                t.task,
                status,
                t.attempts,
                secs(t.duration),
                *([secs(t.import_duration)] if imports else []),
                t.pid or "-",
                error[:80],
            )
        )
    headers = ["FLOW", "STEP", "TASK", "STATUS", "ATTEMPTS", "DURATION"]
    typer.echo(table([*headers, *["IMPORT"] * imports, "PID", "ERROR"], rows))
