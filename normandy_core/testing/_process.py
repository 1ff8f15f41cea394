"""``run_process``: one registered process run in this process as a task of a run runs.

Nothing is re-implemented: the name is looked up in the registry a command builds
(:mod:`._where`), the task is a :class:`~normandy_core.worker.TaskCall` run by
:func:`~normandy_core.worker.run_task` — the function the workers and the ``serial``
executor run — on a temporary store, with the output capture of ``serial``. Its log
comes back through the same handler that feeds a run's log files, so it is masked and
filed the same way; this module only keeps what comes back.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from normandy_core.binding import MissingInput
from normandy_core.testing._datasets import dataset_inputs
from normandy_core.testing._fresh import refresh, remember
from normandy_core.testing._results import (
    LogLine,
    Outputs,
    ProcessResult,
    error_line,
)
from normandy_core.testing._where import Use, Where, where_for

if TYPE_CHECKING:
    from normandy_core._capture import Capture

RUN_ID = "test"
"""``pipe.run_id`` of a process run by :func:`run_process`."""
NO_ENTRY = "test"
"""``pipe.flow`` and ``pipe.step`` where no entry of a project applies."""


class _Log:
    """The log queue of one call: keeps what the task's handler sends (see
    :class:`~normandy_core.tasklog.TaskHandler`), logged and printed lines apart."""

    def __init__(self) -> None:
        self.records: list[logging.LogRecord] = []
        self.lines: list[LogLine] = []
        self.stdout: list[str] = []
        self.stderr: list[str] = []

    def put(self, item: Any) -> None:
        from normandy_core.logs import is_lines, lines_records

        if is_lines(item):  # a batch of logged lines, where no put_text is used
            for record in lines_records(item):
                self._record(record)
        # anything else is the start notice of the attempt: no line of the process

    def put_text(
        self, head: tuple[Any, ...], created: float, text: str, lines: bool = False
    ) -> None:
        from normandy_core.logs import lines_records

        levelno, levelname = head[5], head[6]
        if not lines:
            self._record(lines_records((*head, created, [text]))[0])
            return
        (self.stdout if levelno <= logging.INFO else self.stderr).append(text + "\n")
        self.lines.extend(LogLine(levelname, line, True) for line in text.split("\n"))

    def _record(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(LogLine(record.levelname, record.getMessage(), False))


class _Seen:
    """What :func:`~normandy_core.worker.run_task` observes: the return value, the error."""

    value: Any = None
    error: BaseException | None = None

    def __call__(self, value: Any, error: BaseException | None) -> None:
        if error is None:
            self.value = value
        else:  # from the process's frame on, as the run's log shows it
            from normandy_core.binding import call_process

            tb = error.__traceback__.tb_next if error.__traceback__ is not None else None
            if tb is not None and tb.tb_frame.f_code is call_process.__code__:
                tb = tb.tb_next
            self.error = error.with_traceback(tb)


class ProcessRunner:
    """``run_process``: each call runs one process, in a folder of its own under
    ``base``. ``tests``: the folder of the test file, where the project or package
    under test is looked for. :meth:`close` when done (the fixture does)."""

    def __init__(self, base: Path | None = None, tests: Path | None = None) -> None:
        self._own_base = base is None
        self.base = Path(tempfile.mkdtemp(prefix="normandy-")) if base is None else base
        self.tests = tests
        self.results: list[ProcessResult] = []
        """Every result so far, for the report of a failing test."""
        self._calls = itertools.count(1)
        self._where: dict[Path | None, Where] = {}
        self._capture: Capture | None = None
        self._sys_path = list(sys.path)
        """Given back by :meth:`close`: a project's folders are on it while it is used."""
        self.notes: list[str] = []
        """Modules imported again before a call (another project's package of the same
        name, a module edited), one sentence each: the plugin tells pytest."""

    def __call__(
        self,
        name: str,
        *,
        params: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
        env: str | None = None,
        confs: Mapping[str, Any] | None = None,
        credentials: Mapping[str, Any] | None = None,
        project: str | Path | None = None,
        entry: str | None = None,
    ) -> ProcessResult:
        """Run the process registered as ``name`` once; see the module's docstring and
        ``docs/guide/testing.md`` for what each argument means."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        from normandy_core.logs import level_number
        from normandy_core.masking import secret_values
        from normandy_core.store import FlowStore, file_part, write_value
        from normandy_core.worker import TaskCall

        where = self._where_for(Path(project).resolve() if project is not None else None)
        spec = where.spec(name)
        use = where.use(name, entry)
        env_name, settings, secrets = where.env(env, confs, credentials)
        folder = self.base / f"{next(self._calls):03d}-{file_part(name)}"
        root = where.root or folder / "root"
        root.mkdir(parents=True, exist_ok=True)
        flow = use.flow.name if use else NO_ENTRY
        step = use.step if use else NO_ENTRY
        task = use.entry.name if use else name
        store = FlowStore(folder / "store", flow)
        for variable, value in (inputs or {}).items():
            write_value(store.path(variable), variable, value)
        key = f"{flow}.{step}.{task}"
        merged = {**use.flow.params, **use.entry.params} if use else {}
        mapped = dict(use.entry.inputs) if use else {}
        datasets = dataset_inputs(
            where.project, name, mapped, inputs or {}, env_name, settings, secrets
        )
        if use and where.project is not None and env_name in where.project.config.envs:
            from normandy_core.params import merge_deep  # env params, as a run has them

            merged = merge_deep(merged, where.project.config.envs[env_name].params)
        level = where.project.config.log_level if where.project else "info"
        call = TaskCall(
            run_id=RUN_ID,
            flow=flow,
            step=step,
            task=task,
            key=key,
            process=name,
            target=spec.target,
            params={**merged, **(params or {})},
            tags=use.flow.tags if use else (),
            env=env_name,
            confs=settings,
            credentials=secrets,
            root=str(root),
            vars_dir=str(store.vars_dir),
            staging_dir=str(store.staging(key)),
            log_level=level_number(level),
            masks=secret_values(secrets),
            inputs=mapped,
            outputs=use.entry.outputs if use else None,
            datasets=datasets,
            scope=use.entry.scope if use else None,
        )
        log, seen = _Log(), _Seen()
        self.notes += refresh(spec.target.partition(":")[0], where.folders)
        ended = self._run(call, log, seen)
        remember(where.folders)
        if isinstance(seen.error, MissingInput):  # a test's words, not a run's
            seen.error, ended = _in_a_test(seen.error, ended, call, inputs or {}, use)
        values: dict[str, Any] = {}
        if ended.ok:
            from normandy_core.store import SUFFIX, read_value

            staged = store.staging(key)
            values = {n: read_value(staged / (n + SUFFIX)) for n in store.staged_names(key)}
        result = ProcessResult(
            name=name,
            value=seen.value,
            outputs=Outputs(values),
            records=log.records,
            stdout="".join(log.stdout),
            stderr="".join(log.stderr),
            error=seen.error,
            traceback=ended.traceback,
            entry=use.key if use else None,
            path=root,
            lines=tuple(log.lines),
        )
        result.outputs._why_missing = _why_missing(result, use, where.uses(name))
        self.results.append(result)
        return result

    def _run(self, call: Any, log: _Log, seen: _Seen) -> Any:
        """``run_task`` as ``serial`` runs it: this process the subreaper of what the
        task starts, its descriptors 1 and 2 captured for its time; then the root logger
        as it was."""
        from normandy_core._children import become_subreaper
        from normandy_core.tasklog import release_module_loggers
        from normandy_core.worker import output_capture, run_task

        if self._capture is None:
            self._capture = output_capture(None, permanent=False)
        capture: Capture = self._capture
        subreaper = become_subreaper()
        try:
            return run_task(call, log, capture, observe=seen)
        finally:
            if subreaper:
                become_subreaper(False)
            release_module_loggers()

    def _where_for(self, project: Path | None) -> Where:
        where = self._where.get(project)
        if where is None:
            where = self._where[project] = where_for(project, self.tests)
        return where

    def __repr__(self) -> str:
        done = ", ".join(repr(r) for r in self.results) or "no process run yet"
        return f"<run_process: {done}>"

    def close(self) -> None:
        """Stop capturing, give ``sys.path`` back as it was (what the processes imported
        stays imported); remove the folders of the calls if this runner made them."""
        sys.path[:] = self._sys_path
        if self._capture is not None:
            self._capture.close()
            self._capture = None
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)


def _in_a_test(
    error: MissingInput, ended: Any, call: Any, given: Mapping[str, Any], use: Use | None
) -> tuple[MissingInput, Any]:
    """A missing input of a process run by a test, told as a test gives inputs: by the
    variable's name (``inputs={'raw_orders': …}``), which may not be the parameter's."""
    import dataclasses

    parameter, variable = error.parameter, error.variable
    why = f"give it in the test, inputs={{{variable!r}: …}}"
    if variable != parameter and use is not None:
        why += (
            f": inputs= names variables, and entry {use.key} maps parameter {parameter!r} "
            f"to variable {variable!r} (inputs: {{{parameter}: {variable}}})"
        )
        if parameter in given:
            why += f"; {parameter!r} was given, the parameter's name"
    told = MissingInput(parameter, variable, why)
    told.__traceback__ = error.__traceback__
    message = f"task {call.key} (process {call.process!r}): {told}"  # as a run says it
    text = f"{type(told).__name__}: {message}\n"
    return told, dataclasses.replace(ended, error_message=message, traceback=text)


def _why_missing(result: ProcessResult, use: Use | None, uses: list[Use]) -> Any:
    """The message of ``result.outputs[name]`` for a name it does not hold."""

    def why(name: str) -> str:
        head = f"process {result.name!r} has no output {name!r}"
        if result.error is not None:
            return (
                f"{head}: it failed ({error_line(result.error)}), and a failed task's "
                "writes are discarded; its error and log are in result.describe() and in "
                "the report of the failing test"
            )
        given = ", ".join(map(repr, result.outputs)) or "none"
        text = f"{head}; its outputs: {given}"
        if use is None and result.value is not None:
            text += (
                f"; it returned {type(result.value).__name__} {_short(result.value)}, which "
                "only an entry's `outputs:` stores as a variable (read result.value"
            )
            if len(uses) > 1:
                keys = ", ".join(u.key for u in uses)
                text += f", or choose one of its entries: entry={uses[0].key!r}; "
                text += f"its entries: {keys}"
            else:
                text += ", or declare `outputs:` in the entry of a flow that runs it"
            text += ")"
        return text

    return why


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a value's own __repr__
        return "(no repr)"
    return text if len(text) <= 60 else text[:57] + "..."
