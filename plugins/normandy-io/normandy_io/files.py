"""Files: ``io.read_csv``, ``io.write_csv``, ``io.read_parquet``, ``io.write_parquet``.

Paths are relative to the project root unless absolute, and may use ``{confs.KEY}`` for a
setting of the active environment (``path: "{confs.read}/users.csv"``). Writes go to a
temporary file beside the target, renamed over it once complete, so that a reader never
sees half a file and a failed write leaves the previous file in place.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from normandy_io._params import Params, shown

if TYPE_CHECKING:
    from normandy_core.pipe import Pipe

__all__ = ["read_csv", "read_parquet", "write_csv", "write_parquet"]


def read_csv(pipe: Pipe, log: logging.Logger, params: dict[str, Any]) -> None:
    """Read a CSV file into a pandas DataFrame stored in a variable.

    Params: ``path`` (the file), ``var`` (the variable to write), ``options`` (optional
    keyword arguments of :func:`pandas.read_csv`).
    """
    p = Params("io.read_csv", params, pipe)
    path = _path(p, "the CSV file, relative to the project root")
    var = p.var(what="the name of the variable to store the DataFrame in")
    options = p.options("options", pd.read_csv, ("filepath_or_buffer",))
    _check_exists(p, path)
    frame = pd.read_csv(path, **options)
    pipe.vars.update(var, frame)
    log.info("read %s from %s into %r", _shape(frame), shown(pipe.path, path), var)


def write_csv(pipe: Pipe, log: logging.Logger, params: dict[str, Any]) -> None:
    """Write the DataFrame (or Series) of a variable to a CSV file, atomically.

    Params: ``var``, ``path`` (parent folders are created), ``options`` (optional keyword
    arguments of :meth:`pandas.DataFrame.to_csv`; ``index`` defaults to false).
    """
    p = Params("io.write_csv", params, pipe)
    var = p.var(what="the variable holding the DataFrame to write")
    path = _target(p, "the CSV file to write, relative to the project root")
    options = {"index": False, **p.options("options", pd.DataFrame.to_csv, ("path_or_buf",))}
    frame = p.variable(var, (pd.DataFrame, pd.Series))
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **options)
    log.info("wrote %s of %r to %s", _shape(frame), var, shown(pipe.path, path))


def read_parquet(pipe: Pipe, log: logging.Logger, params: dict[str, Any]) -> None:
    """Read a Parquet file (pyarrow engine) into a pandas DataFrame stored in a variable.

    Params: ``path``, ``var``, ``options`` (optional keyword arguments of
    :func:`pandas.read_parquet`, e.g. ``columns``).
    """
    p = Params("io.read_parquet", params, pipe)
    path = _path(p, "the Parquet file, relative to the project root")
    var = p.var(what="the name of the variable to store the DataFrame in")
    options = p.options("options", pd.read_parquet, ("path", "engine"))
    _check_exists(p, path)
    frame = pd.read_parquet(path, engine="pyarrow", **options)
    pipe.vars.update(var, frame)
    log.info("read %s from %s into %r", _shape(frame), shown(pipe.path, path), var)


def write_parquet(pipe: Pipe, log: logging.Logger, params: dict[str, Any]) -> None:
    """Write the DataFrame (or pyarrow Table) of a variable to a Parquet file, atomically.

    Params: ``var``, ``path`` (parent folders are created), ``options`` (optional keyword
    arguments of :meth:`pandas.DataFrame.to_parquet`, e.g. ``compression``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = Params("io.write_parquet", params, pipe)
    var = p.var(what="the variable holding the DataFrame to write")
    path = _target(p, "the Parquet file to write, relative to the project root")
    options = p.options("options", pd.DataFrame.to_parquet, ("path", "engine"))
    value = p.variable(var, (pd.DataFrame, pa.Table))
    with atomic_path(path) as tmp:
        if isinstance(value, pa.Table):
            pq.write_table(value, tmp, **options)
        else:
            value.to_parquet(tmp, engine="pyarrow", **options)
    log.info("wrote %s of %r to %s", _shape(value), var, shown(pipe.path, path))


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block
    ends without error, deleted otherwise. Parent folders are created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # the name keeps the target's suffixes, so that pandas infers the same compression
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _path(p: Params, what: str) -> Path:
    path = p.path("path", what)
    assert path is not None
    return path


def _check_exists(p: Params, path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(
            f"{p.process}: no file {path} (params.path {p.params['path']!r}, "
            f"relative to the project root {p.pipe.path})"
        )


def _target(p: Params, what: str) -> Path:
    path = _path(p, what)
    if path.is_dir():
        raise p.error("path", f"is a folder ({path}); give the file to write")
    return path


def _shape(value: Any) -> str:
    rows = value.num_rows if hasattr(value, "num_rows") else len(value)
    columns = len(getattr(value, "columns", ())) or 1
    return f"{rows} rows x {columns} columns"
