"""Imports learned (SPEC 20): the modules each task imported when it last ran, which the
next run imports ahead for it (the fork server of the ``local`` executor).

One row per task key, the latest attempt that reported its modules winning. Until the
trace of issue 20 records the modules a task imports with its fingerprint, this small
table is where they are kept (see :mod:`normandy_core._learned`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from normandy_core.history._database import Database


class LearnedModules(Database):
    """The learned-modules side of :class:`~normandy_core.history.History`."""

    def learn(self, key: str, run_id: str, modules: Sequence[str]) -> None:
        """The task ``key`` imported ``modules`` in its attempt of run ``run_id``."""
        self._submit(
            [
                (
                    "INSERT INTO learned_modules (key, run_id, modules) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET run_id = excluded.run_id, "
                    "modules = excluded.modules",
                    (key, run_id, json.dumps(list(modules))),
                    False,
                )
            ]
        )

    def learned(self, keys: Sequence[str] | None = None) -> dict[str, tuple[str, ...]]:
        """The modules each task imported when it last ran (by task key; ``keys``: of
        those tasks only), those of tasks that imported none left out."""
        rows = self._read("SELECT key, modules FROM learned_modules")
        wanted = set(keys) if keys is not None else None
        found = {}
        for row in rows:
            if wanted is not None and row["key"] not in wanted:
                continue
            modules = tuple(json.loads(row["modules"]))
            if modules:
                found[row["key"]] = modules
        return found
