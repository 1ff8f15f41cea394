"""The processes a project declares in its own ``setup.cfg`` or ``pyproject.toml`` (SPEC 14).

A project that is a package lists its processes once, as ``normandy.processes`` entry
points of its package file. Normandy reads them from that file whether the project is
installed or not; an installed or editable copy of the same distribution is the same
source (see :func:`normandy_core.registry.build_registry`).

Every command that opens a project reads these files, so reading stays cheap: a file that
does not mention ``normandy.processes`` is never parsed, and ``tomllib`` (``tomli`` on
Python 3.10) is imported only for a ``pyproject.toml`` that does.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from normandy_core.errors import Problem, display_path

GROUP = "normandy.processes"
_ENTRY_RE = re.compile(r"\s*([^=\s][^=]*?)\s*=\s*(.+?)\s*\Z")


@dataclass(frozen=True)
class DeclaredProcesses:
    """The ``normandy.processes`` entry points of a project's own package file.

    ``dist`` is the distribution's name as the file gives it (``None`` if it gives none),
    ``processes`` maps each process name to its ``"module:attribute"`` target.
    """

    dist: str | None
    file: Path
    processes: Mapping[str, str]

    @property
    def source(self) -> str:
        """How listings and messages name this source: the distribution, else the file."""
        return self.dist or display_path(self.file)


def normalize_dist_name(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503): ``My_Pipes`` -> ``my-pipes``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_declared_processes(root: Path) -> tuple[DeclaredProcesses | None, list[Problem]]:
    """The processes that ``root/pyproject.toml`` and ``root/setup.cfg`` declare (``None``
    when neither declares any), and the problems found reading them."""
    from normandy_core.registry import NAME_PATTERN, TARGET_PATTERN

    problems: list[Problem] = []
    found: list[tuple[str | None, Path, dict[str, str]]] = []
    for file, reader in ((root / "pyproject.toml", _pyproject), (root / "setup.cfg", _setup_cfg)):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # no such file, or not one Normandy can read: pip would say why
        if GROUP not in text:
            continue
        dist, entries = reader(file, text, problems)
        processes: dict[str, str] = {}
        for name, value, line in entries:
            target = value.split("[", 1)[0].replace(" ", "")
            where = f"{GROUP}.{name}"
            if not re.fullmatch(NAME_PATTERN, name):
                message = f"invalid process name {name!r}: names match {NAME_PATTERN}"
            elif not re.fullmatch(TARGET_PATTERN, target):
                message = (
                    f"target {value!r} of process {name!r} must look like "
                    "'package.module:function'"
                )
            else:
                processes[name] = target
                continue
            problems.append(Problem(display_path(file), line, 1, where, message))
        if processes:
            found.append((dist, file, processes))
    if not found:
        return None, problems
    dist = next((d for d, _, _ in found if d), None)
    merged = {name: target for _, _, processes in found for name, target in processes.items()}
    return DeclaredProcesses(dist, found[0][1], merged), problems


Entries = list[tuple[str, str, int]]
"""``(name, value, line)`` of each entry point."""


def _setup_cfg(file: Path, text: str, problems: list[Problem]) -> tuple[str | None, Entries]:
    import configparser

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text, str(file))
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None) or 1
        message = str(exc).splitlines()[0]
        problems.append(
            Problem(display_path(file), line, 1, "", f"cannot read {GROUP}: {message}")
        )
        return None, []
    dist = parser.get("metadata", "name", fallback=None)
    value = parser.get("options.entry_points", GROUP, fallback="")
    lines = text.splitlines()
    entries: Entries = []
    for raw in value.splitlines():
        entry = raw.strip()
        if not entry or entry[0] in "#;":
            continue
        line = _line_of(lines, entry)
        match = _ENTRY_RE.match(entry)
        if match is None:
            problems.append(
                Problem(
                    display_path(file),
                    line,
                    1,
                    f"options.entry_points.{GROUP}",
                    f"{entry!r} is not an entry point: write 'name = package.module:function'",
                )
            )
            continue
        entries.append((match.group(1), match.group(2), line))
    return (dist.strip() or None) if dist else None, entries


def _pyproject(file: Path, text: str, problems: list[Problem]) -> tuple[str | None, Entries]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the backport, a dependency on 3.10 only
        import tomli as tomllib

    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+), column (\d+)", str(exc))
        line, column = (int(found[1]), int(found[2])) if found else (1, 1)
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        problems.append(
            Problem(display_path(file), line, column, "", f"cannot read {GROUP}: {message}")
        )
        return None, []
    project = data.get("project")
    if not isinstance(project, dict):
        return None, []
    dist = project.get("name") if isinstance(project.get("name"), str) else None
    table = (project.get("entry-points") or {}).get(GROUP)
    if not isinstance(table, dict):
        return dist, []
    lines = text.splitlines()
    entries: Entries = []
    for name, value in table.items():
        line = _line_of(lines, name)
        if not isinstance(value, str):
            problems.append(
                Problem(
                    display_path(file),
                    line,
                    1,
                    f"project.entry-points.{GROUP}.{name}",
                    f"the target of process {name!r} must be a string 'package.module:function'",
                )
            )
            continue
        entries.append((name, value, line))
    return dist, entries


def _line_of(lines: list[str], text: str) -> int:
    """The 1-based number of the first line holding ``text`` after the first one naming
    the group (1 when none does)."""
    start = next((n for n, line in enumerate(lines) if GROUP in line), 0)
    return next((n for n, line in enumerate(lines[start:], start + 1) if text in line), 1)
