"""Names for shell completion (SPEC 14), read cheaply from a project: its tags, flows,
envs and process names.

Completion runs on every <TAB>, on projects in any state. So nothing here imports a
process or plugin module or runs the schema: the names come from ``pipeline_conf.yml``
as written, the project's own package file and the installed distributions' metadata.
And nothing here raises: a missing or broken project completes what it can, or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ProjectNames:
    """What a project lets a command line name, each sorted and unique."""

    tags: tuple[str, ...] = ()
    flows: tuple[str, ...] = ()
    envs: tuple[str, ...] = ()
    processes: tuple[str, ...] = ()


def project_names(start: Path | None = None, *, installed: bool = True) -> ProjectNames:
    """The names of the project found from ``start`` (default: the current folder, then
    upward); with ``installed``, also the processes of the installed entry points.
    Never raises: what cannot be read is left out."""
    data: Mapping[Any, Any] = {}
    root: Path | None = None
    try:
        from normandy_core.config import CONF_FILE
        from normandy_core.config._yaml import load_yaml
        from normandy_core.roots import find_project_root

        root = find_project_root(start)
        doc, _problems = load_yaml(root / CONF_FILE)
        if doc is not None and isinstance(doc.data, Mapping):
            data = doc.data
    except Exception:  # completion never fails loudly: no project, an unreadable file
        pass
    confs = _mapping(data.get("confs"))
    flows = _mapping(data.get("flows"))
    tags = {t for f in flows.values() for t in _strings(_mapping(f).get("tags"))}
    processes = set(_strings(_mapping(confs.get("processes"))))
    for flow in flows.values():
        for body in _mapping(_mapping(flow).get("steps")).values():
            processes.update(_entry_names(body))
    if root is not None:
        processes.update(_declared(root))
    if installed:
        processes.update(_installed())
    return ProjectNames(
        tags=_sorted(tags),
        flows=_sorted(_strings(flows)),
        envs=_sorted(_strings(_mapping(confs.get("envs")))),
        processes=_sorted(processes),
    )


def _entry_names(body: Any) -> Iterable[str]:
    """The process names of a step, in either of its forms: an entry's ``process:``, else
    its key."""
    if isinstance(body, Mapping):
        entries = list(body.items())
    elif isinstance(body, list):
        entries = [
            next(iter(item.items()))
            if isinstance(item, Mapping) and len(item) == 1
            else (item, None)
            for item in body
        ]
    else:
        return ()
    names = []
    for key, options in entries:
        process = options.get("process") if isinstance(options, Mapping) else None
        names.extend(_strings([process if isinstance(process, str) else key]))
    return names


def _declared(root: Path) -> Iterable[str]:
    try:
        from normandy_core.package_file import read_declared_processes

        declared, _problems = read_declared_processes(root)
    except Exception:
        return ()
    return declared.processes if declared is not None else ()


def _installed() -> Iterable[str]:
    try:
        from importlib import metadata

        return [ep.name for ep in metadata.entry_points(group="normandy.processes")]
    except Exception:  # a broken distribution's metadata
        return ()


def _mapping(node: Any) -> Mapping[Any, Any]:
    return node if isinstance(node, Mapping) else {}


def _strings(items: Iterable[Any] | None) -> list[str]:
    if not isinstance(items, (list, tuple, Mapping, set)):
        return []
    return [str(item) for item in items if isinstance(item, str)]


def _sorted(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(names)))
