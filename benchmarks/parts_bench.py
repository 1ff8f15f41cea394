"""Parts of Normandy timed inside one process, for the reuse workload (issue 15).

- ``fingerprint --project P``: what fingerprinting adds to each task of the project's
  plan — the decision (the history's earlier successes looked up and verified), the
  task's fingerprint, and its JSON as the history stores it — on a fresh history;
- ``hash --mib N``: the content hash of N MiB (xxh3-128), which the store computes as it
  writes a variable: all fingerprinting adds to a hand-off of that size.

Each writes one JSON object to ``--out``; ``seconds`` is per task (``fingerprint``) or for
the whole buffer (``hash``), the median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def fingerprint(args: argparse.Namespace) -> dict:
    from normandy_core.execution._reuse import Reuse
    from normandy_core.execution._variables import RunVariables
    from normandy_core.history import History
    from normandy_core.plan import Selection
    from normandy_core.prepare import prepare_run
    from normandy_core.project import open_project
    from normandy_core.store import LocalPlace

    project = open_project(Path(args.project))
    prepared = prepare_run(project, Selection((), (), {}))
    tasks = list(prepared.plan.tasks())
    times = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            history = History(Path(tmp) / ".normandy")
            try:
                variables = RunVariables(LocalPlace(Path(tmp) / "runs" / "r"))
                start = time.perf_counter()
                reuse = Reuse(
                    history,
                    LocalPlace(Path(tmp)),
                    variables,
                    prepared.checked,
                    project.registry,
                    (),
                )
                for task in tasks:
                    reuse.decide(task)
                    json.dumps(reuse.of_attempt(task, []).to_dict())
                times.append((time.perf_counter() - start) / len(tasks))
            finally:
                history.close()
    return {"seconds": statistics.median(times), "tasks": len(tasks)}


def content_hash(args: argparse.Namespace) -> dict:
    import xxhash

    data = os.urandom(1 << 20) * args.mib
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        hasher = xxhash.xxh3_128()
        view = memoryview(data)
        for offset in range(0, len(data), 1 << 24):  # in chunks, as the store writes
            hasher.update(view[offset : offset + (1 << 24)])
        hasher.hexdigest()
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "mib": args.mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    fp = sub.add_parser("fingerprint")
    fp.add_argument("--project", required=True)
    hs = sub.add_parser("hash")
    hs.add_argument("--mib", type=int, required=True)
    for p in (fp, hs):
        p.add_argument("--repeats", type=int, default=5)
        p.add_argument("--out", required=True)
    args = parser.parse_args()
    result = fingerprint(args) if args.what == "fingerprint" else content_hash(args)
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
