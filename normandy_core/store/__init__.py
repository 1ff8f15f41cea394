"""The variables storage (SPEC 5): values shared between the steps of one flow in one run.

Layout, under the project's store (``confs.store``; by default ``<project>/.normandy/``)::

    runs/<run_id>/vars/<flow>/<name>.nv               committed values of the flow
    runs/<run_id>/staging/<flow>/<task_key>/<name>.nv a running task's writes, not yet committed

A task writes into its own staging folder (from its worker, so big values never travel
through the orchestrator); when it succeeds the orchestrator commits them by moving them,
and when it fails they are deleted. Values are pickled with protocol 5 and their
out-of-band buffers (NumPy, pandas, Arrow) written raw: on a local file system read back
memory-mapped, so that moving a large array costs about one write and no copy on read;
elsewhere (``s3://``, ``gcs://``… through fsspec) read in one piece, straight into the
buffer the arrays then view.

- :mod:`._format` — the bytes of one value;
- :mod:`._places` — files and folders, local; :mod:`._fsspec` — behind fsspec;
- :mod:`._flow` — a flow's committed variables (:class:`FlowStore`, the orchestrator's)
  and a task's view of them (:class:`Variables`, ``pipe.vars``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from normandy_core.store._flow import (
    SUFFIX,
    FlowStore,
    UndeclaredRead,
    Variables,
    check_name,
    check_output_name,
    file_part,
    store_output,
)
from normandy_core.store._format import decode, encode
from normandy_core.store._places import (
    LocalPlace,
    Place,
    is_local,
    place,
    read_variable,
    store_problem,
    store_root,
)

check_variable_name = check_name
"""Public name of :func:`check_name` (``normandy_core.check_variable_name``), for process
packages that take variable names as params."""

__all__ = [
    "SUFFIX",
    "FlowStore",
    "LocalPlace",
    "Place",
    "UndeclaredRead",
    "Variables",
    "check_name",
    "check_output_name",
    "check_variable_name",
    "file_part",
    "is_local",
    "place",
    "read_value",
    "read_variable",
    "store_output",
    "store_problem",
    "store_root",
    "write_value",
]


def write_value(where: Path | str | Place, name: str, value: Any) -> None:
    """Write ``value`` (the variable ``name``) to the file ``where``, atomically."""
    place(where).write(encode(name, value))


def read_value(where: Path | str | Place) -> Any:
    """Read a value written by :func:`write_value`. Its buffers are views of the file's
    bytes: memory-mapped copy-on-write on a local disk (reading costs no copy, and changing
    a read array in place is allowed: the change stays private to the process)."""
    file = place(where)
    return decode(read_variable(file), str(file))
