"""A run's variables, as the orchestrator handles them (SPEC 5): a task's writes are
staged while it runs, kept when it succeeds, committed to its flow — when its step ends
(``schedule: steps``) or at once (``dataflow``, where nothing reads them before its step
has ended, see :mod:`normandy_core.dependencies`) — and discarded when it fails; two
tasks of one step writing one name is a failure."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from normandy_core.outcomes import Outcome
from normandy_core.plan import Task
from normandy_core.status import CACHED, MAPPED, SUCCEEDED
from normandy_core.store import SUFFIX, FlowStore, Place, Variables, file_part, store_output
from normandy_core.store._format import decode
from normandy_core.store._places import read_variable

Write = tuple[str, str, int, str]
"""``(variable, content hash, size, type)`` of a write."""


class RunVariables:
    """The variables of one run, in its folder ``run_dir`` of the store."""

    def __init__(self, run_dir: Place) -> None:
        self.run_dir = run_dir
        self._flows: dict[str, FlowStore] = {}
        self._step_writes: dict[tuple[str, str], dict[str, str]] = {}
        """(flow, step) -> variable -> the task of that step that wrote it."""
        self._hashes: dict[str, dict[str, str]] = {}
        """Flow -> variable -> content hash, of what is committed (what a task sees)."""
        self._elements: dict[str, dict[str, str]] = {}
        """Flow -> ``VARIABLE[KEY]`` -> the content hash of that element of a variable a
        ``map`` maps over (what its task's fingerprint holds)."""
        self._staged: dict[str, dict[str, str]] = {}
        """Task key -> what it wrote (or was bound), with hashes, until it is committed."""
        self._written: dict[str, list[str]] = {}
        """Task key -> the names of its writes staged, until they are committed (known from
        what its worker reported: its staging folder is not listed again)."""
        self._placed: dict[str, set[str]] = {}
        """Task key -> the writes its worker put among the flow's variables at once (a map
        task's outputs, see :attr:`~normandy_core.worker.TaskCall.outputs_dir`)."""
        self._bound: dict[str, list[tuple[str, Place]]] = {}
        """Task key -> the stored variables of a reused success bound as its writes: each
        linked at once into one folder of the run (so that its bytes are this run's from
        then on), moved among the flow's variables when it is committed (a step of 2,000
        reused tasks made, listed and removed 2,000 staging folders)."""

    @functools.cached_property
    def _bound_dir(self) -> Place:
        return self.run_dir / "staging" / "bound"

    def flow(self, name: str) -> FlowStore:
        store = self._flows.get(name)
        if store is None:
            store = self._flows[name] = FlowStore(self.run_dir, name)
        return store

    # -- an attempt -------------------------------------------------------------------------

    def attempt_starts(self, task: Task) -> None:
        """Drop what an earlier attempt of ``task`` left staged."""
        self._bound.pop(task.key, None)
        self._written.pop(task.key, None)
        self._placed.pop(task.key, None)
        self.flow(task.flow).discard(task.key)

    def attempt_failed(self, task: Task) -> None:
        self._bound.pop(task.key, None)
        self._written.pop(task.key, None)
        self._placed.pop(task.key, None)
        self.flow(task.flow).discard(task.key)

    def attempt_succeeded(
        self, task: Task, writes: Iterable[Write] = (), *, complete: bool = False
    ) -> str | None:
        """Keep ``task``'s writes (``writes``: their hashes) until they are committed; or,
        where another task of its step wrote one of the same names, discard them and say
        why the task failed. ``complete``: ``writes`` are all there are (its worker counted
        them), else the staging folder is listed where none was reported."""
        store = self.flow(task.flow)
        self._staged[task.key] = {name: h for name, h, *_ in writes}
        bound = self._bound.get(task.key)
        if bound is not None:
            names = [n for n, _ in bound]
        else:  # as its worker reported them, else as they are staged
            names = list(self._staged[task.key])
            if not names and not complete:
                names = store.staged_names(task.key)
            self._written[task.key] = names
            if task.element is not None and task.outputs is not None:
                self._placed[task.key] = set(task.outputs.names)
        step_writes = self._step_writes.setdefault((task.flow, task.step), {})
        clashes = [name for name in names if name in step_writes]
        if clashes:
            store.discard(task.key)
            self._bound.pop(task.key, None)
            self._staged.pop(task.key, None)
            self._written.pop(task.key, None)
            self._placed.pop(task.key, None)
            others = ", ".join(f"{n!r} (also written by {step_writes[n]})" for n in clashes)
            return (
                f"{task.key} and another task of the same step wrote the variable {others}; "
                "give them different names"
            )
        for name in names:
            step_writes[name] = task.key
        return None

    def staged(self, task: Task) -> tuple[str, ...]:
        """The names of ``task``'s writes that succeeded, not yet committed."""
        written = self._written.get(task.key)
        if written is not None:
            return tuple(sorted(written))
        return tuple(self.flow(task.flow).staged_names(task.key))

    def write(self, task: Task, values: Mapping[str, Any]) -> tuple[Write, ...]:
        """Stage ``values`` as ``task``'s writes (what a ``map`` collects, written by the
        orchestrator); their hashes, sizes and types."""
        store = self.flow(task.flow)
        variables = Variables(store.vars_dir, store.staging(task.key))
        for name, value in values.items():
            store_output(variables, name, value)
        return tuple((name, *got) for name, got in variables.writes.items())

    # -- committing -------------------------------------------------------------------------

    def step_ended(self, succeeded: Iterable[Task]) -> None:
        """Commit the writes of every task of the step that succeeded (SPEC 5)."""
        for task in succeeded:
            self.commit(task)

    def commit(self, task: Task) -> None:
        """Commit ``task``'s writes: later tasks of its flow see them."""
        self._commit(task.flow, task.key)
        self._hashes.setdefault(task.flow, {}).update(self._staged.pop(task.key, {}))

    def _commit(self, flow: str, key: str) -> None:
        """Move ``key``'s writes among ``flow``'s variables. What it knows of them is
        forgotten only once they are there: a commit that fails (a broken store) leaves
        them staged, and known, for :meth:`commit_leftovers` and ``--resume``."""
        store = self.flow(flow)
        bound = self._bound.get(key)
        if bound is None:
            names = self._written.get(key)
            placed = self._placed.get(key, set())
            if names is not None and placed:
                names = [n for n in names if n not in placed]
            if names is None or names:  # else nothing staged: no folder to remove either
                store.commit(key, names)
            self._written.pop(key, None)
            self._placed.pop(key, None)
            return
        for name, held in bound:
            held.move_to(store.vars_dir / (name + SUFFIX))
        self._bound.pop(key, None)

    def bind(
        self, task: Task, name: str, source: Place, content_hash: str, *, resolved: bool = False
    ) -> None:
        """Take the stored variable ``source`` as ``task``'s write ``name``, committed,
        without a copy, with its other writes (a reused success, SPEC 13). ``resolved``:
        ``source`` is the variable file itself, not a reference to one."""
        held = self._bound_dir / f"{file_part(task.key)}.{file_part(name)}"
        source.link_to(held, resolved=resolved)
        self._bound.setdefault(task.key, []).append((name, held))
        self._staged.setdefault(task.key, {})[name] = content_hash

    def bind_committed(self, flow: str, name: str, source: Place, content_hash: str) -> None:
        """Put the stored variable ``source`` among ``flow``'s committed variables, without
        a copy (a partial run's input, taken from an earlier run)."""
        source.link_to(self.flow(flow).path(name))
        self._hashes.setdefault(flow, {})[name] = content_hash

    # -- reading ----------------------------------------------------------------------------

    def hash_of(self, flow: str, name: str) -> str | None:
        """The content hash of the committed variable ``name`` of ``flow`` (``None``: there
        is none), or of an element (``VARIABLE[KEY]``) of a variable a map maps over."""
        found = self._hashes.get(flow, {}).get(name)
        if found is None and name.endswith("]"):
            return self._elements.get(flow, {}).get(name)
        return found

    def names(self, flow: str) -> list[str]:
        """The committed variables of ``flow``, sorted."""
        return sorted(self._hashes.get(flow, {}))

    def elements(self, flow: str, hashes: Mapping[str, str]) -> None:
        """The content hashes of the elements of a variable mapped over
        (``VARIABLE[KEY]`` -> hash)."""
        self._elements.setdefault(flow, {}).update(hashes)

    def value(self, flow: str, name: str) -> Any:
        """The committed value of ``name`` in ``flow``; ``KeyError`` where there is none."""
        file = self.flow(flow).path(name)
        try:
            data = read_variable(file)
        except (FileNotFoundError, IsADirectoryError):
            raise KeyError(name) from None
        return decode(data, str(file))

    def written(self, task: Task, name: str) -> Any:
        """The value ``task`` wrote as ``name``, wherever it is now: bound (reused),
        staged, or committed."""
        store = self.flow(task.flow)
        file = next((held for n, held in self._bound.get(task.key, ()) if n == name), None)
        if file is None:
            staged = task.key in self._written and name not in self._placed.get(task.key, ())
            file = (store.staging(task.key) if staged else store.vars_dir) / (name + SUFFIX)
        return decode(read_variable(file), str(file))

    # -- the run ----------------------------------------------------------------------------

    def commit_leftovers(self, outcomes: Iterable[Outcome]) -> None:
        """Commit the writes of tasks that succeeded in a step the run did not finish
        (interrupted, or stopped by an error), so that a resumed run finds them."""
        for outcome in outcomes:
            if outcome.status in (SUCCEEDED, CACHED, MAPPED):
                task = outcome.task
                if task.key in self._bound or task.key in self._written:
                    self._commit(task.flow, task.key)

    def clean_up(self) -> None:
        """Remove the run's staging folder (nothing is left there once committed)."""
        (self.run_dir / "staging").remove()
