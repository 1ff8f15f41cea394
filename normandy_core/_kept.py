"""What a command works out from files that rarely change, kept in the project's state
folder between commands (``.normandy/NAME.json``): which distribution installs a module
(:mod:`normandy_core.code`), which configuration passed its schema
(:mod:`normandy_core.config._schema`).

Each entry is kept with the *stamp* of what it was worked out from (sizes, times, inodes)
and is used only while that stamp is unchanged; an entry whose key already says all it
depends on (a content hash) has none. The file is a cache: deleting it is harmless, one
that cannot be read is ignored, one that cannot be written is not (the work is done again
next time), and it is written whole then renamed, so that a command reading it meanwhile
sees the old copy or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


class KeptFile:
    """The entries of one kept file (``path``; ``None``: kept in memory only, for this
    command). ``version`` names their format: a file of another is ignored. ``limit``:
    how many entries are kept at most, the most recently used."""

    def __init__(self, path: Path | None, version: int, limit: int | None = None) -> None:
        self.path = path
        self.version = version
        self.limit = limit
        self._entries: dict[str, list[Any]] | None = None
        self._changed = False

    def get(self, key: str, stamp: Any = None) -> Any:
        """What is kept under ``key`` for ``stamp``; ``None`` where nothing is, or it was
        worked out from something since changed."""
        kept = self._read().get(key)
        if kept is None or kept[0] != stamp:
            return None
        return kept[1]

    def put(self, key: str, value: Any, stamp: Any = None) -> None:
        """Keep ``value`` (plain JSON data) under ``key``, worked out from ``stamp``."""
        entries = self._read()
        entries.pop(key, None)  # the most recent last
        entries[key] = [stamp, value]
        self._changed = True

    def save(self) -> None:
        """Write the entries, where any changed since they were read."""
        if not self._changed or self.path is None or self._entries is None:
            return
        if not self.path.parent.is_dir():  # kept until its folder is made: a project's
            return  # first run makes its state folder after reading its configuration
        self._changed = False
        items = list(self._entries.items())
        if self.limit is not None:
            items = items[-self.limit :]
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            text = json.dumps({"version": self.version, "entries": dict(items)})
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError:  # a read-only state folder: worked out again next time
            with contextlib.suppress(OSError):
                temporary.unlink()

    def _read(self) -> dict[str, list[Any]]:
        if self._entries is None:
            self._entries = {}
            if self.path is not None:
                try:
                    found = json.loads(self.path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    found = None
                if isinstance(found, dict) and found.get("version") == self.version:
                    entries = found.get("entries")
                    if isinstance(entries, dict):
                        self._entries = {
                            k: v
                            for k, v in entries.items()
                            if isinstance(v, list) and len(v) == 2
                        }
        return self._entries
