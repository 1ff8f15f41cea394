"""Parts of Normandy timed inside one process, for the reuse workload (issue 15).

- ``fingerprint --project P``: what fingerprinting adds to each task of the project's
  plan — the decision (the history's earlier successes looked up and verified), the
  task's fingerprint, and its JSON as the history stores it — on a fresh history;
- ``hash --mib N``: what the content hash (xxh3-128, computed chunk by chunk as the store
  writes a variable) adds to writing an array of N MiB the store's way: the write timed
  with the store's hasher and with one that does nothing, alternating, and the difference
  of their medians — all fingerprinting adds to a hand-off of that size.

- ``tracing --data D``: what recording a task's trace (issue 20) costs per task, in this
  process: on a no-op process, ``run_task`` with tracing against without (alternating
  blocks, the difference of their medians), plus the orchestrator turning the trace into
  the fingerprint (``Reuse.of_attempt``); on the realistic pipeline's 23 tasks (run in this
  process, in order, on the realistic data in D), the time spent in the tracing code
  itself — the hooks' handlers, every audit event's dispatch, the import wrappers,
  starting and finishing each recording (hashing each file read once), ``of_attempt`` —
  measured around each, since a few tens of microseconds cannot be told from the noise of
  tasks that take a second. The pipeline runs ``--repeats`` times (each as a fresh worker:
  every file read is hashed): ``seconds`` is per task of the later runs, ``once`` what
  the first paid more, once per process (the libraries' imports indexed, their
  distributions' versions looked up).

Each writes one JSON object to ``--out``; ``seconds`` is per task (``fingerprint``,
``tracing``) or for the whole buffer (``hash``), the median of ``--repeats``.
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
                    json.dumps(reuse.base(task).to_dict())
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


NOOP = "def noop():\n    return None\n"


def _call(module: str, function: str, root: Path, store: object, tracing: object, **kw):
    from normandy_core.worker import TaskCall

    key = f"f.s.{function}"
    return TaskCall(
        run_id="bench",
        flow="f",
        step="s",
        task=function,
        key=key,
        process=function,
        target=f"{module}:{function}",
        params=kw.pop("params", {}),
        tags=(),
        env="dev",
        confs={},
        credentials={},
        root=str(root),
        vars_dir=str(store.vars_dir),  # type: ignore[attr-defined]
        staging_dir=str(store.staging(key)),  # type: ignore[attr-defined]
        tracing=tracing,
        **kw,
    )


def _reuse(root: Path):
    """A Reuse of a throwaway project at ``root`` (its history, a registry of nothing)."""
    from types import MappingProxyType

    from normandy_core.execution._reuse import Reuse
    from normandy_core.execution._variables import RunVariables
    from normandy_core.history import History
    from normandy_core.project import Checked
    from normandy_core.store import LocalPlace

    history = History(root / ".normandy")
    store = LocalPlace(root / ".normandy")
    empty: MappingProxyType[str, object] = MappingProxyType({})
    reuse = Reuse(history, store, RunVariables(store / "runs" / "r"), Checked("dev", empty, empty), None, ())  # type: ignore[arg-type]  # noqa: E501
    return reuse, history


class _Process:
    """What :meth:`Reuse.process` gives, for a process whose source is not looked at."""

    def __init__(self, module: str) -> None:
        from normandy_core.code import ProcessCode
        from normandy_core.fingerprint import Code

        self.value = ProcessCode(Code(module, "x"), (), (), False, False)


def tracing(args: argparse.Namespace) -> dict:
    import sys

    from normandy_core._tracing import TraceSetup, install
    from normandy_core.plan import Task
    from normandy_core.store import FlowStore
    from normandy_core.worker import run_task

    install()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bench_noop.py").write_text(NOOP)
        sys.path.insert(0, str(root))
        import bench_noop  # noqa: F401 - preloaded, as a fork server does

        store = FlowStore(root / "runs" / "r", "f")
        setup = TraceSetup(b"k" * 32, (str(root / "runs"),))
        reuse, history = _reuse(root)
        task = Task("f", "s", "noop", "noop", {})
        reuse._processes["bench_noop:noop"] = _Process("bench_noop").value
        reuse.registry = _Registry("bench_noop:noop")  # type: ignore[assignment]
        try:
            plain: list[float] = []
            traced: list[float] = []
            build: list[float] = []
            block = 200
            for _ in range(3):  # warm-up
                run_task(_call("bench_noop", "noop", root, store, setup))
                run_task(_call("bench_noop", "noop", root, store, None))
            for _ in range(args.repeats * 2):
                for which, setting in ((plain, None), (traced, setup)):
                    calls = [
                        _call("bench_noop", "noop", root, store, setting) for _ in range(block)
                    ]
                    start = time.perf_counter()
                    results = [run_task(call) for call in calls]
                    which.append((time.perf_counter() - start) / block)
                start = time.perf_counter()
                for result in results:
                    reuse.of_attempt(task, result)
                build.append((time.perf_counter() - start) / block)
        finally:
            history.close()
    worker = max(0.0, statistics.median(traced) - statistics.median(plain))
    noop = {"worker": worker, "fingerprint": statistics.median(build)}
    realistic = _realistic(Path(args.data), args.repeats) if args.data else None
    return {
        "seconds": worker + noop["fingerprint"],
        "noop": noop,
        "plain": statistics.median(plain),
        "realistic": realistic,
    }


class _Spec:
    obj = None

    def __init__(self, target: str) -> None:
        self.target = target


class _Registry:
    """A registry of one process (``Reuse`` asks only for its target)."""

    def __init__(self, target: str) -> None:
        self.spec = _Spec(target)

    def get(self, name: str) -> _Spec:
        return self.spec


def _realistic(data: Path, repeats: int) -> dict:
    """The tracing code's own time per task of the realistic pipeline, in this process."""
    import sys

    from normandy_core._tracing import TraceSetup, _hooks, _task
    from normandy_core.plan import Task
    from normandy_core.store import FlowStore
    from normandy_core.worker import run_task

    here = Path(__file__).resolve().parent / "realistic"
    sys.path.insert(0, str(here))
    from layout import FLOWS, MODULES  # type: ignore[import-not-found]

    for module in MODULES:  # preloaded, as a fork server does (its import traced)
        __import__(module)
    spent = {"hooks": 0.0, "events": 0, "recording": 0.0, "fingerprint": 0.0, "task": 0.0}
    timed = {event: _timed(handler, spent) for event, handler in _hooks._HANDLERS.items()}
    original = dict(_hooks._HANDLERS)
    counted = [0]

    def count(event: str, args: tuple) -> None:
        counted[0] += 1

    sys.addaudithook(count)  # every event the tracing hook is called for, while tasks run
    per_run = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out = root / "out"
        out.mkdir()
        reuse, history = _reuse(root)
        try:
            for _ in range(repeats):
                _hooks._digests.clear()  # as a fresh worker: every file read is hashed
                spent.update(hooks=0.0, events=0, recording=0.0, fingerprint=0.0, task=0.0)
                _hooks._HANDLERS.update(timed)
                tasks = 0
                try:
                    for flow, steps in FLOWS.items():
                        store = FlowStore(root / "runs" / f"r{_}", flow)
                        for step, entries in steps:
                            for module, function, outputs in entries:
                                began = time.perf_counter()
                                result = _run_traced(
                                    module, function, outputs, root, store, data, out,
                                    spent, counted, run_task, TraceSetup, _task,
                                )  # fmt: skip
                                spent["task"] += time.perf_counter() - began
                                assert result.ok, result.traceback
                                reuse._processes[f"{module}:{function}"] = _Process(module).value
                                reuse.registry = _Registry(f"{module}:{function}")  # type: ignore[assignment]
                                task = Task(flow, step, function, function, {})
                                start = time.perf_counter()
                                reuse.of_attempt(task, result)
                                spent["fingerprint"] += time.perf_counter() - start
                                tasks += 1
                            for _module, function, _outputs in entries:
                                store.commit(f"f.s.{function}")
                finally:
                    _hooks._HANDLERS.update(original)
                per_run.append({k: v / tasks for k, v in spent.items()} | {"tasks": tasks})
        finally:
            history.close()
    dispatch = _dispatch_cost()
    totals = [
        r["hooks"] + r["recording"] + r["fingerprint"] + r["events"] * dispatch for r in per_run
    ]
    # the first run pays, once per process, what later ones find done (the libraries'
    # imports indexed, their versions looked up): a worker pays it at its first task
    steady = totals[1:] or totals
    middle = sorted(range(len(steady)), key=steady.__getitem__)[len(steady) // 2]
    return {
        "seconds": steady[middle],
        "first": totals[0],
        "once": max(0.0, totals[0] - steady[middle]) * per_run[0]["tasks"],
        "parts": per_run[len(totals) - len(steady) + middle],
        "dispatch": dispatch,
    }


def _run_traced(module, function, outputs, root, store, data, out, spent, counted, run_task,
                setup_type, task_module):  # fmt: skip
    """Run one realistic task with tracing, timing the recording's start and finish."""
    from normandy_core.binding import Outputs

    setup = setup_type(b"k" * 32, (str(root / "runs"),))
    start_of, finish_of = task_module.Recording.start, task_module.Recording.finish

    def start(self):  # noqa: ANN001, ANN202
        t = time.perf_counter()
        start_of(self)
        spent["recording"] += time.perf_counter() - t
        counted[0] = 0

    def finish(self):  # noqa: ANN001, ANN202
        spent["events"] += counted[0]
        t = time.perf_counter()
        value = finish_of(self)
        spent["recording"] += time.perf_counter() - t
        return value

    kinds = None
    if isinstance(outputs, str):
        kinds = Outputs("one", (outputs,))
    elif isinstance(outputs, list):
        kinds = Outputs("sequence", tuple(outputs))
    params = {"data_dir": str(data), "out_dir": str(out), "test_size": 0.25,
              "random_state": 7, "trees": 10}  # fmt: skip
    task_module.Recording.start, task_module.Recording.finish = start, finish
    try:
        return run_task(
            _call(module, function, root, store, setup, params=params, outputs=kinds)
        )
    finally:
        task_module.Recording.start, task_module.Recording.finish = start_of, finish_of


def _timed(handler, spent):  # noqa: ANN001, ANN202
    def timed(args: tuple) -> None:
        t = time.perf_counter()
        try:
            handler(args)
        finally:
            spent["hooks"] += time.perf_counter() - t

    return timed


def _dispatch_cost() -> float:
    """Seconds the tracing audit hook adds to one audit event it does not handle (most
    events: ``pickle.find_class``, ``sys._getframe``…): ``sys.audit`` timed with the hook
    against the same number of calls of an event nobody handles, before any hook."""
    import subprocess
    import sys

    code = (
        "import sys, time\n"
        "def cost():\n"
        "    t = time.perf_counter()\n"
        "    for _ in range(200000): sys.audit('bench.event', 1)\n"
        "    return time.perf_counter() - t\n"
        "before = min(cost() for _ in range(3))\n"
        "from normandy_core._tracing import _hooks, Params, Recording, TraceSetup\n"
        "_hooks.install()\n"
        "r = Recording(TraceSetup(b'k' * 32), 'x', Params()); r.start()\n"
        "after = min(cost() for _ in range(3))\n"
        "r.finish()\n"
        "print((after - before) / 200000)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return max(0.0, float(out.stdout.strip()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    fp = sub.add_parser("fingerprint")
    fp.add_argument("--project", required=True)
    hs = sub.add_parser("hash")
    hs.add_argument("--mib", type=int, required=True)
    hs.add_argument("--dir", help="where to write (the benchmark's folder)")
    tr = sub.add_parser("tracing")
    tr.add_argument("--data", help="the realistic workload's data (else: the no-op only)")
    for p in (fp, hs, tr):
        p.add_argument("--repeats", type=int, default=5)
        p.add_argument("--out", required=True)
    args = parser.parse_args()
    what = {"fingerprint": fingerprint, "hash": content_hash, "tracing": tracing}
    result = what[args.what](args)
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
