"""The run history (SPEC 8): a SQLite database under ``<project>/.normandy/history.sqlite``
with every run, task and attempt, and what each attempt read and wrote.

- :mod:`._schema` — the tables, their version and the migrations of older databases;
- :mod:`._records` — what is written and read back, as typed records;
- :mod:`._database` — the SQLite file: opening and upgrading it, transactions, locks;
- :mod:`._history` — :class:`History`, the runs of one project written and read back;
  :mod:`._lineage` and :mod:`._datasets` — what it knows of variables and of datasets.
"""

from __future__ import annotations

from normandy_core.errors import HistoryError, RunNotFoundError
from normandy_core.history._database import HISTORY_FILE, TIMEOUT_VARIABLE
from normandy_core.history._datasets import DatasetRecord
from normandy_core.history._history import History
from normandy_core.history._records import (
    AttemptRecord,
    AttemptTotals,
    RunIndex,
    RunRecord,
    RunStart,
    RunState,
    Success,
    TaskRecord,
    TaskStart,
    VariableAccess,
    Written,
)
from normandy_core.history._schema import VERSION as SCHEMA_VERSION

__all__ = [
    "HISTORY_FILE",
    "SCHEMA_VERSION",
    "TIMEOUT_VARIABLE",
    "AttemptRecord",
    "AttemptTotals",
    "DatasetRecord",
    "History",
    "HistoryError",
    "RunIndex",
    "RunState",
    "RunNotFoundError",
    "RunRecord",
    "RunStart",
    "Success",
    "TaskRecord",
    "TaskStart",
    "VariableAccess",
    "Written",
]
