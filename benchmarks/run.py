"""Normandy's benchmark suite, side by side with Kedro (issue 6).

    python benchmarks/run.py                 # everything, then results/latest.json,
                                             # RESULTS.md, the README's Performance section
    python benchmarks/run.py --quick         # smaller sizes, 2 repetitions: a smoke check
    python benchmarks/run.py --only fanout   # one workload (repeatable)

Each workload runs Normandy (the real ``normandy`` command on generated temporary projects)
and its Kedro equivalent (scripts run by ``benchmarks/.venv-kedro``, created on first use)
in the same session, alternating, several repetitions; the table shows medians with
min–max and the ratio Normandy/reference. Targets are reported met or missed: nothing here
asserts a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _markdown  # noqa: E402
from _harness import BenchError, ensure_kedro, versions  # noqa: E402
from _report import targets_summary, text_table  # noqa: E402
from workloads import WORKLOADS  # noqa: E402
from workloads._context import Context  # noqa: E402

RESULTS = HERE / "results"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(WORKLOADS),
        metavar="NAME",
        help=f"run only this workload (repeatable): {', '.join(WORKLOADS)}",
    )
    parser.add_argument("--repeats", type=int, help="repetitions (default 5, --quick 2)")
    parser.add_argument("--workdir", type=Path, help="where the temporary projects go")
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    names = args.only or list(WORKLOADS)

    needs_kedro = any(getattr(WORKLOADS[name], "USES_KEDRO", True) for name in names)
    kedro_version = ensure_kedro(log) if needs_kedro else None
    workdir = Path(tempfile.mkdtemp(prefix="normandy-bench-", dir=args.workdir))
    dask = importlib.util.find_spec("distributed") is not None
    if not dask:
        log("distributed is not installed: no dask variants (pip install -e '.[dask]')")
    ctx = Context(quick=args.quick, repeats=repeats, workdir=workdir, log=log, dask=dask)
    results: dict[str, Any] = {}
    started = time.monotonic()
    try:
        for name in names:
            module = WORKLOADS[name]
            log(f"== {name}: {module.TITLE}")
            t0 = time.monotonic()
            results[name] = {
                **module.run(ctx),
                "measured_at": _now(),
                "repeats": repeats,
                "seconds": round(time.monotonic() - t0, 1),
            }
    except BenchError as exc:
        log(f"benchmark failed: {exc}")
        return 1
    finally:
        if args.keep:
            log(f"projects kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    meta = {
        "date": _now(),
        "quick": args.quick,
        "repeats": repeats,
        "command": "python benchmarks/run.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "versions": {**versions(), "kedro": kedro_version},
        "seconds": round(time.monotonic() - started, 1),
    }
    document = _save(meta, results, quick=args.quick)
    rows = [r for name in document["workloads"] for r in document["workloads"][name]["rows"]]
    print(text_table(rows))
    met, judged, missed = targets_summary(rows)
    print(f"\ntargets met: {met} of {judged}")
    for line in missed:
        print(f"  MISSED  {line}")
    return 0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _save(meta: dict[str, Any], results: dict[str, Any], quick: bool) -> dict[str, Any]:
    """Write the JSON; a full run also refreshes RESULTS.md and the README. A run of
    some workloads (``--only``) replaces theirs in latest.json and keeps the others."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / ("quick.json" if quick else "latest.json")
    document: dict[str, Any] = {"meta": meta, "workloads": {}}
    if not quick and path.exists():
        with contextlib.suppress(json.JSONDecodeError):
            previous = json.loads(path.read_text())
            document["workloads"] = previous.get("workloads", {})
            if meta["versions"].get("kedro") is None:  # no Kedro this time: the kept rows'
                kept = previous.get("meta", {}).get("versions", {})
                meta["versions"]["kedro"] = kept.get("kedro")
    document["workloads"].update(results)
    document["workloads"] = {
        n: document["workloads"][n] for n in WORKLOADS if n in document["workloads"]
    }
    path.write_text(json.dumps(document, indent=1) + "\n")
    log(f"results written to {path.relative_to(HERE.parent)}")
    if not quick:
        (HERE / "RESULTS.md").write_text(_markdown.results(document))
        _refresh_readme(_markdown.readme_section(document))
        log("RESULTS.md and the README's Performance section refreshed")
    return document


README = HERE.parent / "README.md"
BEGIN, END = "<!-- benchmarks: begin -->", "<!-- benchmarks: end -->"


def _refresh_readme(section: str) -> None:
    """Replace what stands between the README's benchmark markers with ``section``."""
    text = README.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        log(f"README.md has no {BEGIN} ... {END} markers: its Performance section is unchanged")
        return
    README.write_text(text[: start + len(BEGIN)] + "\n" + section.rstrip() + "\n" + text[end:])


if __name__ == "__main__":
    sys.exit(main())
