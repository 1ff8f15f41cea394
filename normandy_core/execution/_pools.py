"""Pools (SPEC 19): named numbers of units (``confs.pools: {db: 2}``); a task that asks
for some (``pool: db``, ``pools: {db: 1, gpu: 1}``) holds them from the moment its attempt
is handed to the executor until it ends, so that at most that many units are held by the
tasks running at once, across the run, whatever the workers and the engine.

A task takes all its units at once or none (two tasks each holding half of what the
other needs would wait for ever). The tasks waiting are served in the order they came:
one that could start may not pass an earlier one waiting for the same pool, so a task
asking for many units is not starved by a stream of small ones. A run whose tasks ask
for no pool pays a dictionary look-up per attempt.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from normandy_core.plan import Task


@dataclass
class _Waiting:
    task: Task
    pool: str
    since: float = field(default_factory=time.time)


class Pools:
    """The units of ``sizes`` (pool name -> units) and who holds or waits for them."""

    def __init__(self, sizes: Mapping[str, int]) -> None:
        self.free = dict(sizes)
        self._waiting: list[_Waiting] = []
        self._waited: dict[str, float] = {}

    def take(self, task: Task) -> str | None:
        """Take the units ``task`` asks for: ``None`` once it holds them (or asks for
        none); else the pool it waits for (it is queued: :meth:`give_back` hands it out)."""
        if not task.pools:
            return None
        short = self._short(task, self._asked())
        if short is None:
            self._hold(task)
            return None
        self._waiting.append(_Waiting(task, short))
        return short

    def give_back(self, task: Task) -> list[Task]:
        """``task``'s attempt ended: its units are free again. The tasks waiting that can
        take theirs now, in order (they hold them)."""
        if not task.pools:
            return []
        for name, units in task.pools.items():
            self.free[name] += units
        admitted = []
        blocked: set[str] = set()
        for waiting in list(self._waiting):
            short = self._short(waiting.task, blocked)
            if short is None:
                self._waiting.remove(waiting)
                self._hold(waiting.task)
                self._waited[waiting.task.key] = time.time() - waiting.since
                admitted.append(waiting.task)
            else:
                waiting.pool = short
                blocked.update(waiting.task.pools)
        return admitted

    def waited(self, task: Task) -> float:
        """Seconds ``task``'s last wait lasted (0 where it did not wait)."""
        return self._waited.pop(task.key, 0.0)

    def _asked(self) -> set[str]:
        """Every pool a waiting task asks for: a newcomer does not pass them."""
        return {name for w in self._waiting for name in w.task.pools}

    def _short(self, task: Task, blocked: set[str]) -> str | None:
        """The first pool ``task`` cannot take its units of now (``None``: none)."""
        for name, units in task.pools.items():
            if name in blocked or self.free[name] < units:
                return name
        return None

    def _hold(self, task: Task) -> None:
        for name, units in task.pools.items():
            self.free[name] -= units
