"""Reusing work (SPEC 13): each task's fingerprint, and whether an earlier success can
stand for it — in which case its variables are bound into this run without a copy.

The decision is made as the task's step starts, from what the history recorded of the
task's earlier successes (:meth:`History.successes`) and how the things their traces name
are now (:mod:`._world`: the content hashes of this run's variables so far, the files,
environment variables, modules…): a success is reused when
:func:`normandy_core.fingerprint.verify` finds nothing changed, its variables are still
stored, it made every output its entry declares, and this run could claim its run
against ``gc`` (:meth:`History.claim`). Otherwise the task runs, and the reason — the words
of ``--explain`` — is recorded with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from normandy_core._tracing import TaskTrace, TraceSetup
from normandy_core.binding import FromParams, describe_source
from normandy_core.code import ProcessCode, follow, library_version, new_run, process_code
from normandy_core.execution._variables import RunVariables
from normandy_core.execution._world import NO, YES, Now, names_hash, shown, task_checks
from normandy_core.fingerprint import Fingerprint, Keyed, Wiring, verify
from normandy_core.history import History, Success, VariableAccess
from normandy_core.masking import Masker, mask_values
from normandy_core.plan import Task, matches
from normandy_core.project import Checked
from normandy_core.registry import Registry
from normandy_core.secret import project_key
from normandy_core.store import SUFFIX, LocalPlace, Place
from normandy_core.trace import (
    ABSENT,
    DATASET,
    DATASET_WRITTEN,
    ENVIRON,
    EVERYTHING,
    EXISTS,
    FILE,
    FOLDER,
    IMPORTED,
    LIBRARY,
    LISTING,
    MODULE,
    PARAM,
    PROGRAM,
    VARIABLE,
    WRITTEN,
    Trace,
    World,
)

if TYPE_CHECKING:
    from normandy_core.datasets._reuse import DatasetChecks
    from normandy_core.execution._preview import Preview
    from normandy_core.worker import TaskResult

NO_SUCCESS = "no earlier success"
CACHE_OFF = "cache off"
RERUN = "rerun requested"
UNTRACED = "untraced imports"
"""A note: project modules the task uses whose import its worker did not see."""


@dataclass(frozen=True)
class Decision:
    """Whether ``task`` runs (``success`` is ``None``) or an earlier ``success`` stands for
    it, and why, in ``--explain``'s words (``reasons``: each of them)."""

    task: Task
    success: Success | None
    reason: str
    reasons: tuple[str, ...] = ()

    @property
    def reused(self) -> bool:
        return self.success is not None


class Reuse:
    """Fingerprints the tasks of one run, and decides which can be reused.

    ``resumed``: the run ``--resume`` resumes: what succeeded there is reused where its
    fingerprint is unchanged, whatever a task's ``cache`` (a task with cache on may reuse
    any earlier success); ``no_cache``: never reuse (``--no-cache``); ``rerun``: patterns
    of tasks that run whatever their fingerprint (``--rerun``)."""

    def __init__(
        self,
        history: History,
        store: Place,
        variables: RunVariables | Preview,
        checked: Checked,
        registry: Registry,
        masks: Sequence[str],
        *,
        resumed: str | None = None,
        no_cache: bool = False,
        rerun: Sequence[str] = (),
    ) -> None:
        self.history = history
        self.store = store
        self.variables = variables
        self.registry = registry
        self.mask = Masker(masks)
        self.resumed = resumed
        self.force = resumed is not None
        self.no_cache = no_cache
        self.rerun = tuple(rerun)
        state = history.path.parent
        new_run(state)
        self.key = project_key(state)
        self.keyed = Keyed(self.key)
        self.env = self.keyed([checked.env, dict(checked.settings)])
        self.credentials = self.keyed(dict(checked.credentials))
        self.now = Now(self.keyed, state.parent)
        self.datasets = checked.datasets
        """The run's datasets (``None``: the project has none)."""
        self._dataset_checks: DatasetChecks | None = None
        ignore = [str(state)]
        if isinstance(store, LocalPlace):
            ignore.append(str(store.path))
        self.ignore = tuple(ignore)
        self.used: set[str] = set()
        """The runs whose stored variables this run bound (it must not outlive them)."""
        self.recording: str | None = None
        """The run recorded as using them, as they are bound (so a gc while it runs, or
        after it was killed, keeps them); ``None`` for a preview."""
        self._processes: dict[str, ProcessCode] = {}
        self._by_name: dict[str, ProcessCode] = {}
        self._bases: dict[str, Fingerprint] = {}
        self._params: dict[str, dict[str, str]] = {}
        self._known: dict[str, tuple[tuple[str, str], ...]] = {}
        self._folders: dict[tuple[str, str], Place] = {}  # (run, flow) -> its variables
        self._found: dict[tuple[str, str, str], Place] = {}
        """The variable files :meth:`_unusable` found still stored (run, flow, name), for
        :meth:`bind` to link without reading them again (a task's binding follows its
        decision at once)."""

    # -- fingerprints -----------------------------------------------------------------------

    def process(self, task: Task) -> ProcessCode:
        """What the source of the task's process says (once per process and run)."""
        found = self._by_name.get(task.process)
        if found is not None:
            return found
        spec = self.registry.get(task.process)
        module, _, attribute = spec.target.partition(":")
        if spec.obj is not None:
            module = getattr(spec.obj, "__module__", None) or module
            attribute = getattr(spec.obj, "__qualname__", attribute)
        target = f"{module}:{attribute}"
        found = self._processes.get(target)
        if found is None:
            found = self._processes[target] = process_code(module, attribute)
        self._by_name[task.process] = found
        return found

    def base(self, task: Task) -> Fingerprint:
        """The task's fingerprint but for its trace (known once it has run)."""
        found = self._bases.get(task.key)
        if found is None:
            process = self.process(task)
            inputs = _wiring_inputs(task)
            outputs = task.outputs.describe() if task.outputs is not None else ""
            wiring = Wiring(f"{process.code.module}:{self._function(task)}", inputs, outputs)
            found = self._bases[task.key] = Fingerprint(
                process.code, wiring, self.env, self.credentials
            )
        return found

    def _function(self, task: Task) -> str:
        spec = self.registry.get(task.process)
        if spec.obj is not None:
            return str(getattr(spec.obj, "__qualname__", spec.target.partition(":")[2]))
        return spec.target.partition(":")[2]

    def tracing(self, task: Task) -> TraceSetup:
        """What the task's worker needs to record its trace."""
        process = self.process(task)
        return TraceSetup(
            self.key,
            self.ignore,
            process.projects,
            process.libraries,
            self._known.get(task.key, ()),
            not (process.params_escape or _binds_all_params(task)),
        )

    def param(self, task: Task, key: str) -> str:
        """The keyed hash of the task's param ``key`` (``*``: all of them; ``-``: none)."""
        hashes = self._params.setdefault(task.key, {})
        found = hashes.get(key)
        if found is None:
            if key == EVERYTHING:
                found = self.keyed(dict(task.params))
            else:
                found = self.keyed(task.params[key]) if key in task.params else ABSENT
            hashes[key] = found
        return found

    def of_attempt(self, task: Task, result: TaskResult) -> Fingerprint:
        """The full fingerprint of an attempt, with what it read and did."""
        reads: dict[str, dict[str, str]] = {}
        if result.reads:
            reads[VARIABLE] = {name: h or ABSENT for name, h, _ in result.reads}
        if result.checked:
            reads[EXISTS] = {name: YES if found else NO for name, found in result.checked}
        if result.listed:
            reads[LISTING] = {"variables": names_hash(self.variables.names(task.flow))}
        notes: dict[str, tuple[str, ...]] = {}
        writes: dict[str, dict[str, str]] = {}
        if result.datasets:
            self._datasets_of(result, reads, writes)
        trace = result.trace
        if trace is None:  # nothing recorded: nothing can be verified
            reads[PROGRAM] = {"code Normandy did not trace": ""}
        else:
            self._traced(task, trace, reads, notes)
        return self.base(task).with_trace(Trace(reads, writes, notes))

    def _datasets_of(
        self,
        result: TaskResult,
        reads: dict[str, dict[str, str]],
        writes: dict[str, dict[str, str]],
    ) -> None:
        """The datasets the attempt loaded (reads) and saved (writes that must still be
        there for its result to stand)."""
        from normandy_core.datasets._access import READ
        from normandy_core.datasets._reuse import noted

        checks = self.dataset_checks()
        for access in result.datasets:
            if checks is None or access.name not in checks.calls:
                continue  # not a dataset of this run: nothing to verify it by, never reused
            seen = noted(access, checks.declared(access.name), self.keyed)
            if access.direction != READ and self.datasets is not None:
                self.datasets.pin(access.name, None)  # saved in this run: the latest
            kind = reads if access.direction == READ else writes
            kind.setdefault(DATASET if access.direction == READ else DATASET_WRITTEN, {})[
                access.name
            ] = seen

    def dataset_checks(self) -> DatasetChecks | None:
        """The checks of this run's datasets (``None``: it has none)."""
        if self.datasets is None:
            return None
        if self._dataset_checks is None:
            from normandy_core.datasets._reuse import DatasetChecks

            self._dataset_checks = DatasetChecks(
                self.datasets.calls,
                self.keyed,
                lambda kind, name: self.now.unsure(kind, name),
                self.datasets.pinned,
            )
        return self._dataset_checks

    def of_group(self, task: Task, variable: str, content_hash: str | None) -> Fingerprint:
        """The fingerprint of a map's group (SPEC 19): the variable it mapped over. Never
        verified: a group is not reused, its elements are, each by its own fingerprint
        (which holds its element)."""
        reads = {VARIABLE: {variable: content_hash or ABSENT}}
        return self.base(task).with_trace(Trace(reads, {}, {}))

    def _traced(
        self,
        task: Task,
        trace: TaskTrace,
        reads: dict[str, dict[str, str]],
        notes: dict[str, tuple[str, ...]],
    ) -> None:
        process = self.process(task)
        if trace.params_whole or process.params_escape:
            reads[PARAM] = {EVERYTHING: self.param(task, EVERYTHING)}
        elif trace.params:
            reads[PARAM] = {key: self.param(task, key) for key in trace.params}
        if trace.environ:
            reads[ENVIRON] = dict(trace.environ)
        if trace.files:
            reads[FILE] = dict(trace.files)
        if trace.folders:
            reads[FOLDER] = dict(trace.folders)
        libraries = set(trace.libraries)
        if trace.modules:
            static = {*process.projects, process.code.module}
            there = [name for name, present in trace.modules if present and name not in static]
            projects, more = follow(there) if there else ({}, set())
            modules = {name: value for name, value in projects.items() if name not in static}
            modules.update({name: ABSENT for name, present in trace.modules if not present})
            if modules:
                reads[MODULE] = modules
            libraries |= more
        libraries.difference_update(process.libraries)
        if libraries:
            reads[LIBRARY] = {top: library_version(top) for top in sorted(libraries)}
        if trace.programs:
            reads[PROGRAM] = dict.fromkeys(trace.programs, "")
        for note, values in ((IMPORTED, trace.imported), (WRITTEN, trace.written)):
            if values:
                notes[note] = values
        if trace.untraced:
            notes[UNTRACED] = trace.untraced

    def code_ahead(self, tasks: Iterable[Task]) -> None:
        """Fingerprint the code of the processes of ``tasks`` now, at a moment the caller
        would otherwise wait: a module's parse, and the look-up of its libraries'
        versions."""
        for task in {t.process: t for t in tasks}.values():
            self.process(task)

    # -- deciding ---------------------------------------------------------------------------

    def prefetch(self, tasks: Sequence[Task]) -> None:
        """Read the earlier successes of ``tasks`` at once (a map's elements, known only
        as it fans out), where they may be reused."""
        if not self.no_cache and any(t.cache or self.force for t in tasks):
            self.history.prefetch(t.key for t in tasks)
    def world(self, task: Task, success: Success) -> World:
        """How what ``success``'s trace names is now, for ``task``."""
        flow = task.flow
        checks = task_checks(
            self.now,
            lambda name: self.variables.hash_of(flow, name),
            lambda: self.variables.names(flow),
            lambda key: self.param(task, key),
        )
        datasets = self.dataset_checks()
        if datasets is not None:  # else a trace's datasets have no check: they changed
            checks[DATASET] = datasets.read
            checks[DATASET_WRITTEN] = datasets.written
        later = mask_values(task.params, self.mask) if self.mask.secrets else task.params
        return World(checks, shown(self.now, lambda: success.params, later))

    def decide(self, task: Task) -> Decision:
        """Whether an earlier success can stand for ``task`` now."""
        if self.no_cache or not (task.cache or self.force):
            return Decision(task, None, CACHE_OFF)
        if any(matches(task, pattern) for pattern in self.rerun):
            return Decision(task, None, RERUN)
        successes = self.history.successes(task.key)
        if not task.cache:  # only --resume brings it here: what succeeded in that run
            successes = [s for s in successes if s.run_id == self.resumed]
        if not successes:
            return Decision(task, None, NO_SUCCESS)
        self._known[task.key] = tuple(successes[0].fingerprint.trace.read(FILE).items())
        self._found.clear()  # what an earlier decision found and did not bind
        now = self.base(task)
        first: list[str] | None = None
        for success in successes:
            reasons = verify(success.fingerprint, now, self.world(task, success))
            if not reasons:
                reasons = self._unusable(task, success)
            if not reasons:
                return Decision(task, success, f"reuse {success.origin}")
            if first is None:
                first = reasons
        reasons = first or [NO_SUCCESS]
        return Decision(task, None, "; ".join(reasons), tuple(reasons))

    def _unusable(self, task: Task, success: Success) -> list[str]:
        """Why a success whose fingerprint holds cannot stand for ``task`` all the same:
        its variables are gone, it did not make an output the entry declares, or ``gc``
        pruned its run meanwhile."""
        missing = [w.name for w in success.writes if not self._stored(success.run_id, w)]
        if missing:
            return [
                f"its variables are no longer stored ({', '.join(missing)} of run {success.run_id})"
            ]
        # a dataset output is saved, not stored: it counts where the trace recorded its save
        # (then verify checked it is still there), never for being a dataset's name alone
        # (a success recorded before datasets were verified noted none)
        saved = success.fingerprint.trace.writes.get(DATASET_WRITTEN, {})
        written = {w.name for w in success.writes} | set(saved)
        declared = [n for n in (task.outputs.names if task.outputs else ()) if n not in written]
        if declared:
            return [f"run {success.run_id} did not make its outputs ({', '.join(declared)})"]
        if not self.claim(success.run_id):
            return [f"run {success.run_id} was pruned meanwhile (normandy gc)"]
        return []

    def _file(self, run_id: str, flow: str, name: str) -> Place:
        folder = self._folders.get((run_id, flow))
        if folder is None:
            folder = self._folders[(run_id, flow)] = self.store / "runs" / run_id / "vars" / flow
        return folder / (name + SUFFIX)

    def _stored(self, run_id: str, written: VariableAccess) -> bool:
        """Whether the variable file is still there (and, for a reference, what it names)."""
        try:
            found = self._file(run_id, written.flow, written.name).stored()
        except OSError:
            return False
        if found is None:
            return False
        self._found[(run_id, written.flow, written.name)] = found
        return True

    def bind(self, decision: Decision) -> tuple[str, ...]:
        """Bind the variables of a reused success into this run, as the task's writes
        (committed when its step ends), and the versions of the versioned datasets it
        saved, as what this run's later loads read; the variables' names."""
        assert decision.success is not None
        success = decision.success
        names = []
        for written in success.writes:
            key = (success.run_id, written.flow, written.name)
            found = self._found.pop(key, None)
            source = found or self._file(*key)
            self.variables.bind(
                decision.task, written.name, source, written.hash or "", resolved=found is not None
            )
            names.append(written.name)
        if self.datasets is not None:  # its versions saved stand too: later loads read them
            from normandy_core.datasets._reuse import noted_version

            saved = success.fingerprint.trace.writes.get(DATASET_WRITTEN, {})
            for name, seen in saved.items():
                self.datasets.pin(name, noted_version(seen))
        return tuple(names)

    def claim(self, run_id: str) -> bool:
        """Note, before binding anything of it, that this run uses variables stored by
        ``run_id``: in one transaction of the history that refuses a run ``gc`` pruned, so
        that ``gc`` never prunes a run this one binds from. A preview claims nothing."""
        if run_id in self.used or self.recording is None or run_id == self.recording:
            return True
        if not self.history.claim(self.recording, run_id):
            return False
        self.used.add(run_id)
        return True


def _wiring_inputs(task: Task) -> tuple[tuple[str, str], ...]:
    """The wiring's inputs: parameter -> what the entry maps to it (a variable, where not
    the parameter's own name; params, ``params.KEY…``; several variables, as JSON), and
    a template's use: where its tasks' variables are (``namespace``, as JSON)."""
    found = []
    for parameter, source in task.inputs.items():
        if source == parameter:
            continue
        described = describe_source(source)
        text = described if isinstance(described, str) else json.dumps(described)
        found.append((parameter, text))
    if task.scope is not None:
        where = {"namespace": task.scope.namespace, "names": dict(task.scope.names)}
        found.append(("(template)", json.dumps(where, sort_keys=True)))
    return tuple(sorted(found))


def _binds_all_params(task: Task) -> bool:
    """Whether the entry gives the whole params to an argument (``inputs: {p: params}``):
    its code may hand them anywhere under a name Normandy does not follow, so the task
    counts as reading every param."""
    return any(isinstance(s, FromParams) and not s.path for s in task.inputs.values())
