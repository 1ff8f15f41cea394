"""``RESULTS.md`` and the README's Performance section, written from ``results/latest.json``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from _report import fmt, markdown_table, targets_summary
from workloads import WORKLOADS

REPRODUCE = """\
```bash
python benchmarks/run.py                # ~15 min on 2 cores, mostly Kedro's ParallelRunner
python benchmarks/run.py --quick        # smaller sizes, 2 repetitions (results/quick.json)
python benchmarks/run.py --only handoff # one workload (repeatable), merged into latest.json
tox -e bench                            # the same in a fresh environment (arguments after --)
```

The first run creates `benchmarks/.venv-kedro` (a virtualenv with Kedro 1.7 and
`benchmarks/requirements.txt`: NumPy, pandas, scikit-learn, matplotlib, openpyxl, pyarrow)
so that Kedro never enters Normandy's environment; the realistic workload needs the same
libraries next to Normandy (`pip install -r benchmarks/requirements.txt`, which
`tox -e bench` does)."""

METHOD = """\
## How it is measured

- **Same session, alternating.** For each workload every variant (Normandy, each Kedro
  runner, each raw reference, the one-task baselines) runs once per repetition, in an order
  reversed every other repetition, after one unrecorded warm-up. The table gives the
  **median** of the repetitions with min–max; the ratio is Normandy's median over the
  reference's median. Targets are judged on medians; no test asserts any timing.
- **Normandy is the real command.** Every Normandy measurement runs the installed
  `normandy` console script as a subprocess on a project generated in a temporary folder
  (processes registered by a project-local plugin listed in `confs.plugins`, 2 workers,
  the default log level, so logs and the run history are written as in any run).
  Three clocks are used, each named in the table:
  - *whole command*: spawn to exit of the `normandy` process (`os.wait4`, which also gives
    the peak RSS);
  - *run time*: the run's own duration from its history (`normandy runs last --json`:
    `ended − started`), i.e. from the orchestrator's start of the run through the worker
    pool's start, every task, the history and the logs, to the pool's stop — interpreter
    start-up, imports and the configuration's checks excluded. Kedro's *run time* is the
    equivalent: constructing the runner (which starts `ParallelRunner`'s manager) plus
    `runner.run()`, after Kedro is imported;
  - *task clocks*: timestamps taken inside the tasks (`time.time()`), for the hand-off.
- **Per-task overhead (fan-out) and per-step time (chain)** are *marginal*: (whole command
  with N tasks − whole command with 1 task) / (N − 1), the two measured in the same
  repetition. Everything a task costs is in it — planning, submitting, the worker, the
  history rows, three log files, the summary line — and the fixed start-up is not.
  Kedro's is computed the same way from its run time with N and 1 node. The run-history
  variant ((run time N − run time 1) / (N − 1)) and the span of the tasks in the history
  (first submission to last end, / N) are in the details below.
- **CPU speedup** = time of the 8 calls run one after another in a fresh process (measured
  in every repetition) / time of the parallel run: Normandy's run time, the raw
  `ProcessPoolExecutor(2)`'s and Kedro's `ParallelRunner(2)`'s time from creating the pool
  to its shutdown.
- **Hand-off speed** = bytes / time from the producer having built the data (not counted)
  to the consumer having summed it, by the tasks' own clocks: for Normandy the write to
  the variables storage, the commit, starting the next step, the memory-mapped read and
  the sum; for Kedro saving the output to its dataset, loading it and the sum. The raw
  reference writes the same bytes with `numpy.save` to the same disk, reads them with
  `numpy.load` and sums them, in one process. All of it runs through the page cache (the
  machine has far more memory than 256 MiB), as the hand-off between two steps does.
  On the machine measured here the raw reference is slow for two reasons Normandy avoids:
  `numpy.save` writes 256 MiB in one `write()`, which this VM's disk completes in 0.05 s
  or in 0.3–0.7 s at random (the variables storage writes 1 MiB at a time: 0.06 s every
  time), and `numpy.load` reads into newly allocated memory (~0.57 s) where the storage
  maps the file's pages, already in the page cache.
- **Logging speed** = megabytes of lines / time from a task's first line (its own clock)
  to the last write of its log file (the file's modification time): the whole path of a
  line through the log queue and the orchestrator into the three log files and the
  console (a file here). The raw reference prints the same lines to a file from one
  process, without Normandy. No Kedro here.
- **Kedro** runs from `benchmarks/.venv-kedro` with its logging as shipped (its rich
  handler at INFO, like Normandy's console log), telemetry disabled
  (`KEDRO_DISABLE_TELEMETRY`), output to files, not a terminal, as Normandy's."""


def _details(name: str, result: Mapping[str, Any]) -> list[str]:
    lines = [
        f"### {WORKLOADS[name].TITLE} (`--only {name}`)",
        "",
        (WORKLOADS[name].__doc__ or "").strip(),
        "",
        f"Parameters: {_params(result['params'])}; "
        f"{result['repeats']} repetitions, measured {result['measured_at']} "
        f"({result['seconds']:.0f} s).",
        "",
        *result.get("notes", []),
        "<details><summary>every series (median, min, max)</summary>",
        "",
        "| series | median | min | max |",
        "|---|---|---|---|",
    ]
    for key, stats in result["metrics"].items():
        unit = _unit(key)
        lines.append(
            f"| `{key}` | {fmt(stats['median'], unit)} | {fmt(stats['min'], unit)} "
            f"| {fmt(stats['max'], unit)} |"
        )
    lines += ["", "</details>", ""]
    return lines


def _unit(key: str) -> str:
    for suffix, unit in (
        ("_ms", "ms"),
        ("mb_s", "MB/s"),
        ("speed", "MiB/s"),
        ("speedup", "×"),
        ("rss_mib", "MiB"),
    ):
        if key.endswith(suffix):
            return unit
    if key.split(".")[0] in ("python -c pass",) or key.startswith(("normandy ", "kedro ")):
        return "ms"
    return "s"


def _machine(meta: Mapping[str, Any]) -> str:
    v = meta["versions"]
    return (
        f"{v.get('cpus', '?')} CPUs, Python {v.get('python', '?')} on {v.get('platform', '?')}; "
        f"normandy {v.get('normandy', '?')}, "
        f"Kedro {v.get('kedro', '?')}, NumPy {v.get('numpy', '?')}, pandas {v.get('pandas', '?')}"
    )


def results(document: Mapping[str, Any]) -> str:
    meta, workloads = document["meta"], document["workloads"]
    rows = [r for name in workloads for r in workloads[name]["rows"]]
    met, judged, missed = targets_summary(rows)
    lines = [
        "# Benchmark results",
        "",
        "Written by `python benchmarks/run.py` (issue 6); do not edit by hand. "
        f"Last run: {meta['date']}, `{meta['command'].strip()}`, {meta['seconds'] / 60:.0f} min.",
        "",
        f"Machine: {_machine(meta)}.",
        "",
        markdown_table(rows),
        "",
        f"**Targets met: {met} of {judged}.**" + ("" if not missed else " Missed:"),
        "",
        *[f"- {line}" for line in missed],
        "",
        "## Reproduce",
        "",
        REPRODUCE,
        "",
        METHOD,
        "",
        "## The workloads",
        "",
    ]
    for name, result in workloads.items():
        lines += _details(name, result)
    return "\n".join(lines).rstrip() + "\n"


def readme_section(document: Mapping[str, Any]) -> str:
    meta, workloads = document["meta"], document["workloads"]
    rows = [r for name in workloads for r in workloads[name]["rows"]]
    met, judged, _ = targets_summary(rows)
    return "\n".join(
        [
            "## Performance",
            "",
            "`benchmarks/` measures Normandy against Kedro 1.7 on the same machine, in the same "
            "session, alternating: many no-op tasks in one step (fan-out) and in a chain of "
            "steps, CPU-bound tasks, a 256 MiB array and DataFrame handed from one step to the "
            "next, start-up of the commands, planning 10,000 tasks, and a task printing and "
            "logging 50 MB of lines, reruns where nothing or one input changed (reuse), and a "
            "realistic 23-task machine-learning pipeline "
            "(pandas, scikit-learn, matplotlib; CSV, Excel and Parquet files) run by both "
            "tools' whole commands, also with its files as datasets (catalogs on both sides), "
            "a composed 31-task project (four pipelines, a template used twice, nested and "
            "env params), and the cost of stamping 1,000 files; the fan-out and the hand-off "
            "also on the dask executor. "
            "Latest run "
            f"({meta['date']}; {_machine(meta)}), medians with min–max; "
            f"targets met: {met} of {judged}:",
            "",
            markdown_table(rows),
            "",
            "How each number is measured, and every series, are in "
            "[benchmarks/RESULTS.md](benchmarks/RESULTS.md). To reproduce:",
            "",
            REPRODUCE,
            "",
        ]
    )


def _params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in params.items())
