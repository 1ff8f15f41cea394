"""Parts of Normandy timed inside one process, for the reuse workload (issue 15).

- ``fingerprint --project P``: what fingerprinting adds to each task of the project's
  plan — the decision (the history's earlier successes looked up and verified), the
  task's fingerprint, and its JSON as the history stores it — on a fresh history;
- ``hash --mib N``: what the content hash (xxh3-128, computed chunk by chunk as the store
  writes a variable) adds to writing an array of N MiB the store's way: the write timed
  with the store's hasher and with one that does nothing, alternating, and the difference
  of their medians — all fingerprinting adds to a hand-off of that size.

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


class _NoHash:
    """A hasher that does nothing, in the store's hasher's place."""

    def update(self, data: object) -> None:
        pass

    def digest(self) -> bytes:
        return bytes(16)


def content_hash(args: argparse.Namespace) -> dict:
    import numpy as np
    import xxhash

    from normandy_core.store import _format

    value = np.frombuffer(os.urandom(1 << 20) * args.mib, dtype=np.uint8)
    timed: dict[str, list[float]] = {"hashed": [], "not": []}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        target = Path(tmp) / "value.nv"

        def write(hasher: object) -> float:
            _format.xxhash = hasher  # type: ignore[attr-defined]
            start = time.perf_counter()
            with open(target, "wb") as out:
                for chunk in _format.encode("value", value):
                    out.write(chunk)
            seconds = time.perf_counter() - start
            target.unlink()
            return seconds

        class _Null:
            xxh3_128 = _NoHash

        try:
            write(xxhash)  # warm-up: the file system, the allocator
            for _ in range(args.repeats):
                timed["hashed"].append(write(xxhash))
                timed["not"].append(write(_Null))
        finally:
            _format.xxhash = xxhash  # type: ignore[attr-defined]
    hashed, bare = statistics.median(timed["hashed"]), statistics.median(timed["not"])
    return {"seconds": max(0.0, hashed - bare), "hashed": hashed, "bare": bare, "mib": args.mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    fp = sub.add_parser("fingerprint")
    fp.add_argument("--project", required=True)
    hs = sub.add_parser("hash")
    hs.add_argument("--mib", type=int, required=True)
    hs.add_argument("--dir", help="where to write (the benchmark's folder)")
    for p in (fp, hs):
        p.add_argument("--repeats", type=int, default=5)
        p.add_argument("--out", required=True)
    args = parser.parse_args()
    result = fingerprint(args) if args.what == "fingerprint" else content_hash(args)
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
