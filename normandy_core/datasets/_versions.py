"""Versioned datasets (``versioned: true``), laid out as Kedro does: each save goes to
``PATH/RUN_ID/NAME`` (``NAME``: the last part of ``PATH``), a load takes the latest
version, or the one ``normandy run --load-version NAME=RUN_ID`` names. Run ids sort by
time, so the latest version is the greatest name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from normandy_core.datasets._files import Files, basename, files_for, join


def version_path(path: str, version: str) -> str:
    """The file of one version of the dataset at ``path``."""
    return join(path, version, basename(path))


class Versions:
    """The versions of the versioned dataset at ``path`` (a local path or a URL)."""

    def __init__(self, path: str, options: Mapping[str, Any] | None = None) -> None:
        self.path = path
        self._files: tuple[Files, str] | None = None
        self._options = dict(options or {})

    @property
    def files(self) -> tuple[Files, str]:
        if self._files is None:
            self._files = files_for(self.path, self._options)
        return self._files

    def all(self) -> list[str]:
        """Every version that holds its file, oldest first."""
        files, inner = self.files
        name = basename(inner)
        found = []
        for version in files.ls(inner):
            if version.startswith("."):
                continue
            try:
                files.info(join(inner, version, name))
            except (FileNotFoundError, NotADirectoryError):
                continue
            found.append(version)
        return found

    def latest(self) -> str | None:
        """The latest version, or ``None`` where there is none."""
        files, inner = self.files
        name = basename(inner)
        for version in reversed(files.ls(inner)):
            if version.startswith("."):
                continue
            try:
                files.info(join(inner, version, name))
            except (FileNotFoundError, NotADirectoryError):
                continue
            return version
        return None

    def has(self, version: str) -> bool:
        files, inner = self.files
        try:
            files.info(join(inner, version, basename(inner)))
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True
