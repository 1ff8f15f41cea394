"""Reusing work (SPEC 13): each task's fingerprint, and whether an earlier success can
stand for it — in which case its variables are bound into this run without a copy.

The decision is made as the task's step starts, from what the history recorded of the
task's earlier successes (:meth:`History.successes`) and the content hashes of the
variables of this run so far (:class:`RunVariables`): the success is reused when
:func:`normandy_core.fingerprint.verify` finds nothing changed and its variables are
still stored. Otherwise the task runs, and the reason — the words of ``--explain`` — is
recorded with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from normandy_core.code import code_of
from normandy_core.execution._variables import RunVariables
from normandy_core.fingerprint import (
    ABSENT,
    Code,
    Fingerprint,
    credentials_hash,
    env_hash,
    names_hash,
    params_hashes,
    verify,
)
from normandy_core.history import History, Success
from normandy_core.masking import Masker, mask_values
from normandy_core.plan import Plan, Task, matches
from normandy_core.project import Checked
from normandy_core.registry import Registry
from normandy_core.store import SUFFIX, Place

NO_SUCCESS = "no earlier success"
CACHE_OFF = "cache off"
RERUN = "rerun requested"


@dataclass(frozen=True)
class Decision:
    """Whether ``task`` runs (``success`` is ``None``) or an earlier ``success`` stands for
    it, and why, in ``--explain``'s words."""

    task: Task
    success: Success | None
    reason: str

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
        self.env = env_hash(checked.env, checked.settings)
        self.credentials = credentials_hash(checked.credentials)
        self.used: set[str] = set()
        """The runs whose stored variables this run bound (it must not outlive them)."""
        self.recording: str | None = None
        """The run recorded as using them, as they are bound (so a gc while it runs, or
        after it was killed, keeps them); ``None`` for a preview."""
        self._code: dict[str, Code] = {}
        self._bases: dict[str, Fingerprint] = {}

    # -- fingerprints -----------------------------------------------------------------------

    def base(self, task: Task) -> Fingerprint:
        """The task's fingerprint but for what it reads (known once it has run)."""
        found = self._bases.get(task.key)
        if found is None:
            found = self._bases[task.key] = Fingerprint(
                self._code_of(task.process),
                params_hashes(task.params),
                self.env,
                self.credentials,
            )
        return found

    def of_attempt(
        self,
        task: Task,
        reads: Sequence[tuple[str, str | None, int | None]],
        checked: Sequence[tuple[str, bool]] = (),
        listed: bool = False,
    ) -> Fingerprint:
        """The full fingerprint of an attempt that read ``reads``."""
        names = names_hash(self.variables.names(task.flow)) if listed else ""
        return self.base(task).with_reads(
            {name: h or ABSENT for name, h, _ in reads}, dict(checked), names
        )

    def code_ahead(self, tasks: Iterable[Task]) -> None:
        """Fingerprint the code of the processes of ``tasks`` now, at a moment the caller
        would otherwise wait: a module's parse, and for a library whose distribution has
        another name (``sklearn``: scikit-learn) a look-up that can take 0.1 s."""
        for process in dict.fromkeys(task.process for task in tasks):
            self._code_of(process)

    def _code_of(self, process: str) -> Code:
        spec = self.registry.get(process)
        module, _, attribute = spec.target.partition(":")
        if spec.obj is not None:
            module = getattr(spec.obj, "__module__", None) or module
            attribute = getattr(spec.obj, "__qualname__", attribute)
        found = self._code.get(f"{module}:{attribute}")
        if found is None:
            found = self._code[f"{module}:{attribute}"] = code_of(module, attribute)
        return found

    # -- deciding ---------------------------------------------------------------------------

    def prefetch(self, tasks: Sequence[Task]) -> None:
        """Read the earlier successes of ``tasks`` at once (a map's elements, known only
        as it fans out), where they may be reused."""
        if not self.no_cache and any(t.cache or self.force for t in tasks):
            self.history.prefetch(t.key for t in tasks)

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
        now = self.base(task)
        shown_now = mask_values(dict(task.params), self.mask)
        first: list[str] | None = None
        for success in successes:
            reasons = verify(
                success.fingerprint,
                now,
                lambda name: self.variables.hash_of(task.flow, name),
                lambda: self.variables.names(task.flow),
                (success.params, shown_now),
            )
            if not reasons:
                missing = [
                    w.name for w in success.writes if not self._stored(success, w.flow, w.name)
                ]
                if not missing:
                    return Decision(task, success, f"reuse {success.origin}")
                reasons = [
                    f"its variables are no longer stored ({', '.join(missing)} of run "
                    f"{success.run_id})"
                ]
            if first is None:
                first = reasons
        return Decision(task, None, "; ".join(first or [NO_SUCCESS]))

    def _file(self, run_id: str, flow: str, name: str) -> Place:
        return self.store / "runs" / run_id / "vars" / flow / (name + SUFFIX)

    def _stored(self, success: Success, flow: str, name: str) -> bool:
        """Whether the variable file is still there (and, for a reference, what it names)."""
        try:
            file = self._file(success.run_id, flow, name)
            return file.exists() and file.resolve().exists()
        except OSError:
            return False

    def bind(self, decision: Decision) -> tuple[str, ...]:
        """Bind the variables of a reused success into this run, as the task's writes
        (committed when its step ends); their names."""
        assert decision.success is not None
        success = decision.success
        names = []
        for written in success.writes:
            source = self._file(success.run_id, written.flow, written.name)
            self.variables.bind(decision.task, written.name, source, written.hash or "")
            names.append(written.name)
        self.use(success.run_id)
        return tuple(names)

    def use(self, run_id: str) -> None:
        """Note that this run binds variables stored by ``run_id``."""
        if run_id not in self.used:
            self.used.add(run_id)
            if self.recording is not None:
                self.history.uses(self.recording, [run_id])


UNKNOWN = "?"
"""A variable's hash in a preview, where a task that runs makes it."""


class Preview:
    """The variables of a run not started (``run --dry-run --explain``): the hashes of
    what reused tasks would bind, :data:`UNKNOWN` for what tasks that run would write."""

    def __init__(self) -> None:
        self._hashes: dict[str, dict[str, str]] = {}
        self.makers: dict[tuple[str, str], str] = {}
        """(flow, variable) -> the task that runs and makes it."""

    def hash_of(self, flow: str, name: str) -> str | None:
        return self._hashes.get(flow, {}).get(name)

    def names(self, flow: str) -> list[str]:
        return sorted(self._hashes.get(flow, {}))

    def bind(self, task: Task, name: str, source: Place, content_hash: str) -> None:
        self._hashes.setdefault(task.flow, {})[name] = content_hash

    def made(self, task: Task, names: Sequence[str]) -> None:
        for name in names:
            self._hashes.setdefault(task.flow, {})[name] = UNKNOWN
            self.makers[(task.flow, name)] = task.key

    def borrow(self, flow: str, name: str, content_hash: str) -> None:
        self._hashes.setdefault(flow, {})[name] = content_hash


def preview(reuse: Reuse, preview_variables: Preview, plan: Plan) -> list[Decision]:
    """What ``run --explain`` would say of each task, without running anything: a task
    fed by one that runs may still be reused, if what it reads comes out the same."""
    decisions = []
    for task in plan.tasks():
        if task.map is not None:  # its elements are known once it runs
            assert task.map is not None
            preview_variables.made(task, task.outputs.names if task.outputs else ())
            reason = f"mapped over {task.map.variable}: each element decided as it fans out"
            decisions.append(Decision(task, None, reason))
            continue
        decision = reuse.decide(task)
        if decision.reused:
            reuse.bind(decision)
        else:
            previous = reuse.history.successes(task.key, limit=1)
            written = [w.name for w in previous[0].writes] if previous else []
            preview_variables.made(task, [*written, *(task.outputs.names if task.outputs else ())])
            decision = Decision(task, None, _pending(decision.reason, task, preview_variables))
        decisions.append(decision)
    return decisions


def _pending(reason: str, task: Task, variables: Preview) -> str:
    """``input changed (NAME)`` where NAME is made again by a task that runs: not known
    before it does."""
    parts = []
    for part in reason.split("; "):
        name = part[len("input changed (") : -1] if part.startswith("input changed (") else ""
        maker = variables.makers.get((task.flow, name))
        if maker is not None:
            part = f"input {name} is made again by {maker} (reused if it comes out the same)"
        parts.append(part)
    return "; ".join(parts)
