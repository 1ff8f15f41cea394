"""What one attempt did with a dataset (lineage, SPEC 16), as plain data: recorded in the
history beside its variable reads and writes, and what the reuse of a task that touches
datasets is verified against."""

from __future__ import annotations

from dataclasses import dataclass

from normandy_core.datasets._base import Stamp

READ = "read"
WRITE = "write"


@dataclass(frozen=True)
class DatasetAccess:
    """A dataset an attempt read or wrote: its ``name`` and ``type``, the ``location``
    read or written (a file's path or URL, the version's for a versioned dataset; never a
    credential), the ``version`` (a run id) of a versioned dataset, its stamp then (size
    in bytes, modification time, entity tag) and its content ``hash`` where computed
    (files that are cheap to read again: local, in memory; ``None`` elsewhere, or where
    the file changed while it was read)."""

    name: str
    direction: str
    """``read`` or ``write``."""
    type: str
    location: str
    version: str | None = None
    size: int | None = None
    mtime: float | None = None
    etag: str | None = None
    hash: str | None = None

    @property
    def stamp(self) -> Stamp:
        return Stamp(self.size, self.mtime, self.etag)
