"""A preview of a value a run stored: a DataFrame's shape, dtypes and first rows; an
array's shape, dtype and first items; a bounded ``repr`` otherwise.

A value is loaded in a child process (``python -m normandy_core.web._preview``), never in
the web app: unpickling runs code of the classes it names, can take long and take much
memory. The child is given :data:`TIME_LIMIT` seconds and killed past them; a value
stored in more than :data:`SIZE_LIMIT` bytes is not loaded at all. What it shows is masked
with the project's credentials.

Where previews come from is a :class:`Source`: a run's variable today (``kind`` =
``"variable"``). Datasets (SPEC 16) come as another kind: a loader in :data:`LOADERS`
(``kind -> (root, Source) -> value``), run by the same child, bounded the same way."""

from __future__ import annotations

import json
import reprlib
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TIME_LIMIT = 10.0
SIZE_LIMIT = 256 * 1024 * 1024
ROWS = 20
REPR_CHARS = 4000


@dataclass(frozen=True)
class Source:
    """What to preview: ``kind`` ``variable`` (``name`` of ``flow`` in ``run``)."""

    kind: str
    name: str
    flow: str = ""
    run: str = "last"


@dataclass(frozen=True)
class Preview:
    source: Source
    type: str = ""
    size: int | None = None
    shape: list[int] | None = None
    dtypes: list[tuple[str, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    """The first :data:`ROWS` rows (a DataFrame's, an array's), each value as text."""
    text: str = ""
    """A bounded ``repr`` (of what has no rows)."""
    error: str = ""
    """Why there is no preview."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _load_variable(root: Path, source: Source) -> Any:
    from normandy_core.catalog import load

    return load(source.name, flow=source.flow or None, run=source.run, project=root)


LOADERS: dict[str, Callable[[Path, Source], Any]] = {"variable": _load_variable}
"""How each kind of source is loaded (in the child process)."""


def preview(
    root: Path, source: Source, size: int | None, mask: Callable[[str], str]
) -> Preview:
    """Preview ``source`` (stored in ``size`` bytes, where known) of the project at
    ``root``; never raises for what the value is or does: the preview says why instead."""
    if source.kind not in LOADERS:
        return Preview(source, error=f"cannot preview a {source.kind}")
    if size is not None and size > SIZE_LIMIT:
        return Preview(
            source,
            size=size,
            error=f"too big to preview here ({size / 2**20:.0f} MiB; the limit is "
            f"{SIZE_LIMIT // 2**20} MiB): load it in a notebook with normandy_core.load()",
        )
    request = json.dumps({"root": str(root), "source": asdict(source)})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "normandy_core.web._preview"],
            input=request,
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT,
            cwd=root,
        )
    except subprocess.TimeoutExpired:
        return Preview(source, size=size, error=f"loading it took more than {TIME_LIMIT:g} s")
    try:
        data = json.loads(done.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        why = (done.stderr.strip().splitlines() or ["it ended without a word"])[-1]
        return Preview(source, size=size, error=mask(f"the value could not be loaded: {why}"))
    return Preview(
        source,
        type=data.get("type", ""),
        size=size,
        shape=data.get("shape"),
        dtypes=[(mask(str(k)), str(v)) for k, v in data.get("dtypes", [])],
        columns=[mask(str(c)) for c in data.get("columns", [])],
        rows=[[mask(str(v)) for v in row] for row in data.get("rows", [])],
        text=mask(data.get("text", "")),
        error=mask(data.get("error", "")),
    )


def describe(value: Any) -> dict[str, Any]:
    """What a preview shows of ``value`` (plain data, every value as bounded text)."""
    kind = type(value)
    out: dict[str, Any] = {"type": f"{kind.__module__}.{kind.__qualname__}"}
    short = reprlib.Repr()
    short.maxstring = short.maxother = 200
    if hasattr(value, "dtypes") and hasattr(value, "head") and hasattr(value, "columns"):
        head = value.head(ROWS)  # a DataFrame (pandas, or one alike)
        out["shape"] = list(value.shape)
        out["dtypes"] = [[str(c), str(t)] for c, t in value.dtypes.items()]
        out["columns"] = [str(c) for c in head.columns]
        out["rows"] = [[short.repr(v) for v in row] for row in head.itertuples(index=False)]
    elif hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "tolist"):
        out["shape"] = list(value.shape)  # an array
        out["dtypes"] = [["", str(value.dtype)]]
        first = value[:ROWS] if len(value.shape) else value
        rows = first.tolist()
        rows = rows if isinstance(rows, list) else [rows]
        out["rows"] = [[short.repr(v) for v in (r if isinstance(r, list) else [r])] for r in rows]
    else:
        text = reprlib.Repr()
        text.maxstring, text.maxother, text.maxlist, text.maxdict = 2000, 2000, 50, 50
        out["text"] = text.repr(value)[:REPR_CHARS]
    return out


def _main() -> None:
    request = json.loads(sys.stdin.read())
    source = Source(**request["source"])
    try:
        value = LOADERS[source.kind](Path(request["root"]), source)
        answer = describe(value)
    except Exception as exc:
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(answer, default=str))


if __name__ == "__main__":
    _main()
