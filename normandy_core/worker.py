"""Running one task, in a worker process (or in the orchestrator with ``serial``).

A worker receives a :class:`TaskCall` naming the process's target, imports it itself
(cached per worker, never a pickled function), calls it with the arguments it asks for,
and returns a :class:`TaskResult`. What the process logs or prints, and what its
subprocesses write to its file descriptors 1 and 2, is sent, masked and tagged with its
flow/step/task, to the orchestrator's log queue. When the task ends, what it started ends
with it, and the working directory and the SIGINT/SIGTERM handlers it may have changed are
restored.

With ``tracing`` in its call, what the task does while its function runs is recorded —
the params, environment variables, files and folders it reads, the modules it imports,
the programs it starts (:mod:`normandy_core._tracing`) — and returned as its result's
``trace``, for reuse (SPEC 13).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from normandy_core._capture import Capture
from normandy_core._children import TaskChildren
from normandy_core._interrupt import RunInterrupted
from normandy_core._tracing import (
    Params,
    Recording,
    TaskTrace,
    TraceSetup,
    in_fork_server,
    install,
)
from normandy_core.binding import (
    BadVariadic,
    MissingInput,
    OutputError,
    Outputs,
    Scope,
    Signature,
    Source,
    call_process,
    input_values,
    signature_of,
    source_of,
    variables_of,
)
from normandy_core.logs import QueueHandler, start_notice
from normandy_core.masking import Masker, secret_values
from normandy_core.pipe import Pipe, ScopedVariables, reset_current, set_current
from normandy_core.registry import import_target
from normandy_core.store import UndeclaredRead, Variables, store_output
from normandy_core.tasklog import LogWriter, task_logger

if TYPE_CHECKING:
    from normandy_core.datasets._access import DatasetAccess
    from normandy_core.datasets._runtime import DatasetCall

__all__ = [
    "Masker",
    "TaskCall",
    "TaskResult",
    "TaskTrace",
    "TraceSetup",
    "forget_imported",
    "init_worker",
    "output_capture",
    "run_task",
    "secret_values",
]

_imported: dict[str, tuple[Callable[..., Any], Signature]] = {}


def forget_imported(modules: Iterable[str]) -> None:
    """Forget the functions of ``modules`` imported so far in this process: the next
    task imports them again (the pytest plugin does it after an edit)."""
    gone = set(modules)
    for target in [t for t in _imported if t.partition(":")[0] in gone]:
        del _imported[target]


_log_queue: Any = None
_capture: Capture | None = None
_own_handlers: dict[int, Any] | None = None
"""A worker's SIGINT and SIGTERM handlers, as :func:`init_worker` found them: what each
task leaves them as (looked up once: each look-up makes an enum of the handler)."""

if in_fork_server():  # before it preloads the process modules: what they read is seen
    install()


@dataclass
class TaskCall:
    """Everything a worker needs to run one attempt of a task: plain, picklable data.

    Not frozen: one is made for every attempt, and a frozen dataclass of 29 fields sets
    each through ``object.__setattr__`` (8 µs a call, ten times a plain one)."""

    run_id: str
    flow: str
    step: str
    task: str
    key: str
    process: str
    target: str
    params: dict[str, Any]
    tags: tuple[str, ...]
    env: str
    confs: dict[str, Any]
    credentials: dict[str, Any]
    root: str
    vars_dir: str
    """The flow's committed variables: a path, or a URL of the store."""
    staging_dir: str
    """This task's writes until they are committed: a path, or a URL of the store."""
    attempt: int = 1
    log_level: int = logging.INFO
    masks: tuple[str, ...] = field(default_factory=tuple)
    inputs: dict[str, Source] = field(default_factory=dict)
    """Parameter -> what it gets, where the entry maps something (``inputs:``): a
    variable, params (read from ``pipe.params``), several variables."""
    outputs: Outputs | None = None
    """Where the return value goes (``outputs:``); ``None``: it is ignored."""
    datasets: tuple[DatasetCall, ...] = ()
    """The datasets its inputs are loaded from and its outputs saved to (SPEC 16)."""
    dataset_names: frozenset[str] = frozenset()
    """Every dataset of the project: names its ``pipe.vars`` writes may not take."""
    arguments: dict[str, Any] = field(default_factory=dict)
    """Parameter -> a value given as it is: a ``map`` task's element (SPEC 19)."""
    declared: tuple[str, ...] | None = None
    """Under ``confs.schedule: dataflow``: the variables of other tasks it may read
    (``pipe.vars`` refuses the others); ``None``: any."""
    outputs_dir: str = ""
    """Where its outputs are written, if not staged: a ``map`` task's, named
    ``NAME[KEY]``, which no process can read, go straight among the flow's variables (a
    map of 10,000 elements committed 10,000 staging folders)."""
    scope: Scope | None = None
    """A template's task: where its variables are (``namespace.name``, or as the use
    maps them), for its arguments and ``pipe.vars``."""
    modules: tuple[str, ...] = ()
    """The modules it imported when it last ran, as its trace noted them (SPEC 20,
    imports learned): an engine may start it in a process that has them already."""
    tracing: TraceSetup | None = None
    """Record what the task does (for reuse); ``None``: do not."""


Access = tuple[str, "str | None", "int | None"]
"""``(variable, content hash, size in bytes)``; hash and size ``None``: it did not exist."""


@dataclass(frozen=True)
class TaskResult:
    """How an attempt ended in its worker, and what it read and wrote (lineage)."""

    key: str
    ok: bool
    pid: int
    started: float
    ended: float
    error_type: str = ""
    error_message: str = ""
    traceback: str = ""
    reads: tuple[Access, ...] = ()
    """The variables of earlier steps it read (through inputs or ``pipe.vars``)."""
    writes: tuple[tuple[str, str, int, str], ...] = ()
    """``(variable, content hash, size, type)`` of each value it wrote."""
    checked: tuple[tuple[str, bool], ...] = ()
    """Variables of earlier steps whose existence it tested (``name in pipe.vars``)."""
    listed: bool = False
    """Whether it listed the variables' names (``pipe.vars.keys()``)."""
    import_duration: float = 0.0
    """Seconds it spent importing its process's module before its work began (``started``
    is when the work began): 0 where the module was there already (preloaded, or imported
    by an earlier task of this process)."""
    datasets: tuple[DatasetAccess, ...] = ()
    """The datasets it read and wrote: stamp, content hash, version (SPEC 16)."""
    trace: TaskTrace | None = None
    """What it did while it ran, where its call asked (a success's only)."""
    writes_known: bool = False
    """``writes`` is every variable it wrote (its ``pipe.vars`` counted them): nothing
    needs to list its staging folder to find them."""


def init_worker(log_queue: Any, sys_path: Iterable[str]) -> None:
    """Pool initializer: where to send log records, the project's import paths, and
    descriptors 1 and 2 captured for good (see :mod:`normandy_core._capture`)."""
    global _log_queue, _capture, _own_handlers
    _log_queue = log_queue
    for entry in reversed(list(sys_path)):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    _capture = output_capture(log_queue, permanent=True)
    _own_handlers = _handlers()


class _Masking(logging.Filter):
    """Masks what is written outside any task, with the last task's credentials."""

    masker = Masker(())

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.masker(record.getMessage())
        record.args = None
        return True


_untagged = _Masking()


def output_capture(log_queue: Any, *, permanent: bool) -> Capture:
    """The capture of this process's descriptors 1 and 2 for :func:`run_task`; what is
    written outside a task is filed under ``normandy`` (masked with the last task's
    credentials)."""
    logger = logging.getLogger(f"normandy.worker.{os.getpid()}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    if log_queue is not None:
        handler = QueueHandler(log_queue)
        handler.addFilter(_untagged)
        logger.addHandler(handler)
    return Capture(logger, permanent=permanent)


def run_task(
    call: TaskCall,
    log_queue: Any = None,
    capture: Capture | None = None,
    *,
    observe: Callable[[Any, BaseException | None], None] | None = None,
) -> TaskResult:
    """Run one attempt of a task and report how it ended. Never raises for the process:
    its exceptions, ``KeyboardInterrupt`` and ``SystemExit`` included, are its failure;
    only :class:`~normandy_core._interrupt.RunInterrupted` (a real Ctrl-C, ``serial``)
    goes through. ``capture``: of this process's descriptors 1 and 2 (a worker's own by
    default). The result's ``started`` is when the work began: importing the process's
    module first is counted apart (``import_duration``). ``observe``, for a caller in this
    same process (``normandy_core.testing``): called with the process's return value and
    ``None`` when it returns, with ``None`` and the exception when the attempt fails (both,
    where its return does not fit its ``outputs``) — objects a :class:`TaskResult` cannot
    carry between processes."""
    from normandy_core.datasets._worker import DatasetUseError, TaskDatasets  # SPEC 16

    started = time.time()
    # a worker's own handlers (every task leaves them so), else as they are now (serial)
    own_handlers = _own_handlers if capture is None and log_queue is None else None
    masker = Masker(call.masks)
    _untagged.masker = masker
    queue = log_queue if log_queue is not None else _log_queue
    capture = capture if capture is not None else _capture
    if queue is not None:  # first in the queue, before anything the task logs
        queue.put(start_notice(call.flow, call.key, call.attempt, os.getpid(), started))
    logger = task_logger(call, queue, masker)
    vars_ = Variables(call.vars_dir, call.staging_dir, call.declared)
    pipe = Pipe(
        env=call.env,
        confs=call.confs,
        credentials=call.credentials,
        path=Path(call.root),
        vars=vars_ if call.scope is None else ScopedVariables(vars_, call.scope.variable),
        params=_params(call),
        run_id=call.run_id,
        flow=call.flow,
        step=call.step,
        process=call.process,
        task=call.task,
        tags=call.tags,
    )
    cwd, handlers = _cwd(), own_handlers or _handlers()
    children = TaskChildren()
    if capture is not None:
        capture.begin(logger)
    token = set_current(pipe)
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = LogWriter(logger, logging.INFO)  # type: ignore[assignment]
    sys.stderr = LogWriter(logger, logging.WARNING)  # type: ignore[assignment]
    load = _Load()
    datasets = TaskDatasets(call.datasets, call.run_id, call.dataset_names, masker)
    recording: Recording | None = None
    try:
        fn, signature = load(call)
        started = load.ended or started
        available = {"pipe": pipe, "log": logger, "params": pipe.params}
        given = {name: available[name] for name in signature.reserved}
        # an input named like a dataset is loaded from it, before the trace starts
        read = datasets.preload(_variables_read(signature, call), vars_.value)
        if call.tracing is not None:
            recording = Recording(call.tracing, call.target.partition(":")[0], pipe.params)
            recording.start()
        try:
            # params given as arguments are read from pipe.params, the Params that notes
            # the keys read: a task is fingerprinted by the params its arguments take too;
            # and what unpickling its inputs imports is in its trace (imported ahead next
            # time, SPEC 20)
            arguments = input_values(
                signature, call.inputs, read, pipe.params, call.scope, call.arguments
            )
            value = call_process(fn, given, arguments)
        finally:
            if recording is not None:
                recording.stop()
        if observe is not None:
            observe(value, None)
        if call.outputs is not None:  # committed with the task's pipe.vars writes
            outputs = call.outputs.split(value, vars_.writes)
            for name, output in datasets.stage(outputs, call.outputs.names).items():
                store_output(vars_, name, output, call.outputs_dir or None)
        datasets.commit(vars_.writes)  # saved when everything else has succeeded
    except BaseException as exc:  # the process's failure, whatever it is, is reported
        datasets.discard()
        if isinstance(exc, RunInterrupted):
            raise
        if load.began and not load.ended:  # its import failed: no work of its began
            started = load.end()
        if observe is not None:
            observe(None, exc)
        ours = (MissingInput, OutputError, UndeclaredRead, DatasetUseError, BadVariadic)
        if isinstance(exc, ours):  # Normandy's words
            message = f"task {call.key} (process {call.process!r}): {exc}"
            text = f"{type(exc).__name__}: {message}\n"
        else:
            tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # hide this frame
            if tb is not None and tb.tb_frame.f_code is call_process.__code__:
                tb = tb.tb_next  # and the call's
            message, text = masker(_text(exc)), masker.format_exception(exc, tb)
        return TaskResult(
            key=call.key,
            ok=False,
            pid=os.getpid(),
            started=started,
            ended=time.time(),
            error_type=type(exc).__name__,
            error_message=message,
            traceback=text,
            import_duration=load.seconds,
            datasets=tuple(datasets.accesses),
            **_lineage(vars_),
        )
    finally:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, LogWriter):
                stream.end()
        sys.stdout, sys.stderr = stdout, stderr
        # what the task started ends with it, and what it wrote is in its log before its
        # result is returned
        children.end()
        if capture is not None:
            capture.end()
        _chdir(cwd)
        _restore(handlers)
        reset_current(token)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
    return TaskResult(
        key=call.key,
        ok=True,
        pid=os.getpid(),
        started=started,
        ended=time.time(),
        import_duration=load.seconds,
        datasets=tuple(datasets.accesses),
        trace=_trace(recording),
        writes_known=True,
        **_lineage(vars_),
    )


def _variables_read(signature: Signature, call: TaskCall) -> list[str]:
    """The variables (or datasets) the task's arguments take, as its entry maps them."""
    names = [
        name
        for p in signature.inputs
        for name in variables_of(source_of(p.name, call.inputs, call.scope))
    ]
    for star in (signature.star, signature.star_star):
        if star and star in call.inputs:
            names.extend(variables_of(call.inputs[star]))
    return names


def _trace(recording: Recording | None) -> TaskTrace | None:
    """The task's trace; ``None`` where it could not be made (then nothing the task did
    can be verified, and it is never reused: never a failure of the task for it)."""
    if recording is None:
        return None
    try:
        return recording.finish()
    except Exception:  # noqa: BLE001 - a bug of tracing must not fail the task
        return None


def _params(call: TaskCall) -> dict[str, Any]:
    """The task's ``params``: a :class:`Params` noting the keys it reads, where they are
    to be noted (see :class:`TraceSetup`)."""
    if call.tracing is not None and call.tracing.params_keys:
        return Params(call.params)
    return dict(call.params)


def _lineage(vars_: Variables) -> dict[str, Any]:
    return {
        "reads": tuple((n, *(v or (None, None))) for n, v in vars_.reads.items()),
        "writes": tuple((n, *v) for n, v in vars_.writes.items()),
        "checked": tuple(vars_.checked.items()),
        "listed": vars_.listed,
    }


def _text(exc: BaseException) -> str:
    """``str(exc)``, even for an exception whose ``__str__`` raises (a process's own)."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - whatever its __str__ raised
        return f"<str() of this {type(exc).__name__} failed>"


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # it was removed
        return None


def _chdir(path: str | None) -> None:
    """Back to the working directory of before the task (a task's ``os.chdir`` must not
    move the next task, or ``normandy`` itself under ``serial``)."""
    if path is not None:
        with contextlib.suppress(OSError):
            os.chdir(path)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _handlers() -> dict[int, Any]:
    """SIGINT's and SIGTERM's handlers (the worker's group kill, or under ``serial`` the
    orchestrator's Ctrl-C), which a task must not take away from later tasks."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in _SIGNALS}


def _restore(handlers: dict[int, Any]) -> None:
    for sig, handler in handlers.items():
        if handler is not None and signal.getsignal(sig) is not handler:
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, handler)


class _Load:
    """The process's function and signature, imported once per process; how long the
    import took, where it happened now (``began``/``ended``: when, else 0)."""

    began = ended = seconds = 0.0

    def __call__(self, call: TaskCall) -> tuple[Callable[..., Any], Signature]:
        cached = _imported.get(call.target)
        if cached is None and call.target.partition(":")[0] in sys.modules:
            cached = _import(call)  # preloaded: looked up, not imported
        if cached is None:
            self.began = time.time()
            cached = _import(call)
            self.end()
        return cached

    def end(self) -> float:
        self.ended = time.time()
        self.seconds = self.ended - self.began
        return self.ended


def _import(call: TaskCall) -> tuple[Callable[..., Any], Signature]:
    cached = _imported.get(call.target)
    if cached is None:
        if call.root not in sys.path:
            for folder in (Path(call.root), Path(call.root) / "src"):
                if folder.is_dir() and str(folder) not in sys.path:
                    sys.path.insert(0, str(folder))
        fn = import_target(call.target, call.process)
        cached = _imported[call.target] = (fn, signature_of(fn, call.process, call.target))
    return cached
