"""Kedro's side of the benchmarks, run by the interpreter of ``benchmarks/.venv-kedro``.

``python kedro_bench.py WORKLOAD RUNNER [options]`` builds a Kedro pipeline equivalent to
Normandy's workload, runs it with ``ParallelRunner`` or ``SequentialRunner`` and prints one
JSON object: ``seconds`` is the runner's own time (constructing the runner, which starts
ParallelRunner's manager, plus ``run()``), after Kedro and the work module are imported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import work  # noqa: E402


def _runner(kind: str, workers: int):  # noqa: ANN202 - Kedro's types live in the venv only
    from kedro.runner import ParallelRunner, SequentialRunner

    return ParallelRunner(max_workers=workers) if kind == "parallel" else SequentialRunner()


def _catalog(kind: str):  # noqa: ANN202
    from kedro.io import DataCatalog, SharedMemoryDataCatalog

    # ParallelRunner requires the shared-memory catalog: every dataset it creates on the
    # fly is a SharedMemoryDataset proxied by its manager process.
    return SharedMemoryDataCatalog() if kind == "parallel" else DataCatalog()


def _run(pipe, kind: str, workers: int) -> float:  # noqa: ANN001
    start = time.perf_counter()
    runner = _runner(kind, workers)
    runner.run(pipe, _catalog(kind))
    return time.perf_counter() - start


def fanout(args: argparse.Namespace) -> dict:
    from kedro.pipeline import node, pipeline

    nodes = [node(work.noop, None, f"out_{i}", name=f"noop_{i}") for i in range(args.n)]
    return {"seconds": _run(pipeline(nodes), args.runner, args.workers)}


def chain(args: argparse.Namespace) -> dict:
    from kedro.pipeline import node, pipeline

    nodes = [node(work.noop, None, "d_0", name="link_0")]
    nodes += [
        node(work.passthrough, f"d_{i - 1}", f"d_{i}", name=f"link_{i}") for i in range(1, args.n)
    ]
    return {"seconds": _run(pipeline(nodes), args.runner, args.workers)}


def cpu(args: argparse.Namespace) -> dict:
    from kedro.pipeline import node, pipeline

    nodes = [
        node(partial(work.burn, args.iterations), None, f"burnt_{i}", name=f"burn_{i}")
        for i in range(args.n)
    ]
    return {"seconds": _run(pipeline(nodes), args.runner, args.workers)}


def handoff(args: argparse.Namespace) -> dict:
    from kedro.pipeline import node, pipeline

    nodes = [
        node(partial(_produce, args.kind, args.nbytes, args.timing), None, "data", name="write"),
        node(partial(_consume, args.timing), "data", "summed", name="read"),
    ]
    seconds = _run(pipeline(nodes), args.runner, args.workers)
    with open(args.timing) as handle:
        clocks = json.load(handle)
    return {"seconds": seconds, **clocks}


def _produce(kind: str, nbytes: int, timing: str):  # noqa: ANN202
    start = time.time()
    data = work.make_data(kind, nbytes)
    work.note(timing, started=start, created=time.time())
    return data


def _consume(timing: str, data) -> float:  # noqa: ANN001
    loaded = time.time()
    result = work.total(data)
    work.note(timing, loaded=loaded, summed=time.time())
    return result


def plan(args: argparse.Namespace) -> dict:
    """Building a pipeline of ``n`` nodes and ordering it (Kedro's planning)."""
    from kedro.pipeline import node, pipeline

    start = time.perf_counter()
    width = 100
    nodes = []
    for i in range(args.n):
        layer, col = divmod(i, width)
        inputs = None if layer == 0 else f"d_{layer - 1}_{col}"
        fn = work.passthrough if inputs else work.noop
        nodes.append(node(fn, inputs, f"d_{layer}_{col}", name=f"n_{i}"))
    pipe = pipeline(nodes)
    groups = pipe.grouped_nodes
    return {"seconds": time.perf_counter() - start, "groups": len(groups)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=["fanout", "chain", "cpu", "handoff", "plan"])
    parser.add_argument("runner", choices=["parallel", "sequential"])
    parser.add_argument("--n", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=0)
    parser.add_argument("--kind", choices=["array", "frame"], default="array")
    parser.add_argument("--nbytes", type=int, default=0)
    parser.add_argument("--timing", default="")
    parser.add_argument("--out", required=True, help="where to write the JSON result")
    parser.add_argument(
        "--quiet", action="store_true", help="Kedro's loggers at WARNING (default: as shipped)"
    )
    args = parser.parse_args()
    import kedro
    import kedro.pipeline  # noqa: F401 - configures Kedro's logging, as in any Kedro run

    if args.quiet:
        import logging

        logging.getLogger("kedro").setLevel(logging.WARNING)
    result = globals()[args.workload](args)
    with open(args.out, "w") as handle:
        json.dump({"kedro": kedro.__version__, **result}, handle)


if __name__ == "__main__":
    main()
