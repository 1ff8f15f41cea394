"""The raw references, run as their own process by the benchmark's interpreter.

- ``serial``: the CPU work run one call after another (the baseline of the speedups);
- ``pool``: the same calls on a bare ``concurrent.futures.ProcessPoolExecutor``;
- ``handoff``: writing the hand-off's bytes with ``numpy.save`` and reading them back with
  ``numpy.load``, then summing them, on the disk of the benchmark's projects;
- ``lines``: printing the logging workload's lines to a file (no Normandy): what printing
  them costs a process by itself.

Each writes one JSON object to ``--out``; ``seconds`` excludes the interpreter's start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import work  # noqa: E402


def serial(args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    for _ in range(args.n):
        work.burn(args.iterations)
    return {"seconds": time.perf_counter() - start}


def pool(args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as executor:
        list(executor.map(work.burn, [args.iterations] * args.n))
    return {"seconds": time.perf_counter() - start}


def handoff(args: argparse.Namespace) -> dict:
    import numpy as np

    data = work.make_data(args.kind, args.nbytes)
    # the frame's bytes as one array, taken before the clock starts
    values = data.to_numpy() if args.kind == "frame" else data
    path = Path(args.dir) / f"raw-{args.kind}.npy"
    start = time.perf_counter()
    np.save(path, values)
    saved = time.perf_counter()
    loaded_values = np.load(path)
    loaded = time.perf_counter()
    result = work.total(loaded_values)
    end = time.perf_counter()
    path.unlink()
    return {
        "seconds": end - start,
        "write": saved - start,
        "read": loaded - saved,
        "sum": end - loaded,
        "total": result,
    }


def lines(args: argparse.Namespace) -> dict:
    path = Path(args.dir) / "raw-lines.txt"
    with open(path, "w", encoding="utf-8") as out:
        start = time.perf_counter()
        work.chatter(args.n, args.width, "print", out=out)
        out.flush()
        end = time.perf_counter()
    path.unlink()
    return {"seconds": end - start}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=["serial", "pool", "handoff", "lines"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--n", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=0)
    parser.add_argument("--kind", choices=["array", "frame"], default="array")
    parser.add_argument("--nbytes", type=int, default=0)
    parser.add_argument("--dir", default=".")
    parser.add_argument("--width", type=int, default=99)
    args = parser.parse_args()
    result = globals()[args.workload](args)
    with open(args.out, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
