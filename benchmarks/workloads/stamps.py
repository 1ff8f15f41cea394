"""11. Stamps (issue 21): what it costs to tell whether 1,000 files of 1 MiB changed.

A dataset's *stamp* (size, modification time, entity tag: what ``fs.info()`` says) is
what reuse looks at first; its content is read (and hashed) only where the stamp changed.
Measured in this process, on local files, through ``FileDataset.stamp()`` and
``FileDataset.content_hash()``: the time, and the bytes the process read meanwhile
(Linux's ``/proc/self/io``, ``rchar``: every byte a read call returned).

- **Stamping 1,000 files**: time, against hashing their content (the page cache warm, as
  after a run). Target: stamping reads no file's content — under 64 KiB read in all
  (against 1,000 MiB for the hashes).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import IO, Any

from _harness import Samples
from _report import row, target

from workloads._context import Context

NAME = "stamps"
TITLE = "stamps"
USES_KEDRO = False
MIB = 1 << 20


def read_bytes() -> int:
    """Bytes this process has read so far (``rchar``), or -1 where Linux does not say."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def run(ctx: Context) -> dict[str, Any]:
    from normandy_core.datasets import DatasetConfig, FileDataset

    class Blob(FileDataset):
        def read(self, file: IO[bytes]) -> Any:
            return file.read()

        def write(self, data: Any, file: IO[bytes]) -> None:
            file.write(data)

    folder = ctx.folder(NAME)
    count = ctx.size(1000, 100)
    content = os.urandom(MIB)
    files = []
    for i in range(count):
        path = folder / f"file-{i:04d}.bin"
        if not path.exists() or path.stat().st_size != MIB:
            path.write_bytes(content)
        files.append(path)
    ctx.log(f"  {count} files of 1 MiB in {folder}")
    samples = Samples()

    def datasets() -> list[FileDataset]:
        return [Blob(DatasetConfig(name=p.stem, type="blob", path=str(p))) for p in files]

    def stamp() -> None:
        found = datasets()
        before, started = read_bytes(), time.perf_counter()
        stamps = [d.stamp() for d in found]
        samples.add("stamp", time.perf_counter() - started)
        samples.add("stamp.read_mib", (read_bytes() - before) / MIB)
        assert all(s is not None and s.size == MIB for s in stamps)

    def hashed() -> None:
        found = datasets()
        before, started = read_bytes(), time.perf_counter()
        hashes = {d.content_hash() for d in found}
        samples.add("hash", time.perf_counter() - started)
        samples.add("hash.read_mib", (read_bytes() - before) / MIB)
        assert len(hashes) == 1

    variants = {"stamp": stamp, "hash": hashed}
    for variant in variants.values():  # warm: the page cache, the imports
        variant()
    samples.series.clear()
    ctx.alternate(variants)
    m = samples.summary()
    if sys.platform != "linux":  # no rchar: the bytes are not measured
        m.pop("stamp.read_mib")
        m.pop("hash.read_mib")
    return {
        "params": {"files": count, "size": "1 MiB"},
        "metrics": m,
        "rows": _rows(m, count),
        "notes": [],
        "details": {},
    }


def _rows(m: dict[str, Any], count: int) -> list[dict[str, Any]]:
    rows = [
        row(
            TITLE,
            f"stamping {count:,} files of 1 MiB (size, mtime: FileDataset.stamp)",
            "s",
            m["stamp"],
            ("hashing their content (FileDataset.content_hash, page cache warm)", m["hash"]),
        )
    ]
    if "stamp.read_mib" in m:
        rows.append(
            row(
                TITLE,
                f"stamping {count:,} files of 1 MiB: bytes read by the process meanwhile",
                "MiB",
                m["stamp.read_mib"],
                ("hashing them", m["hash.read_mib"]),
                target("reads no content: < 64 KiB in all", "value", "<=", 1 / 16),
            )
        )
    return rows
