"""The code a task's result depends on (SPEC 13), read from the source without importing.

A process's :class:`~normandy_core.fingerprint.Code` is

- the hash of what its function reaches in its module (:mod:`normandy_core._source`): the
  function, the definitions it uses, and everything at the module's top level that is not
  a definition — not the other processes of the module, nor the helpers only they use;
- the version of the distribution the module is installed from, if it is;
- what that code imports, followed: a module of the project itself (not installed: a
  ``helpers.py`` beside it, an editable package) by the hash of its whole source, and what
  it imports in turn; an installed library by its distribution's version; the standard
  library by Python's version.

So editing a process reruns it, editing a helper reruns the processes whose code uses
it, and upgrading pandas reruns what imports pandas. What the task imports while it runs,
and what those libraries import in turn, is found by its worker and added to its trace
(:mod:`normandy_core._tracing`). A doubt always counts as a dependency: an unneeded rerun
is a cost, a stale result served is the worst bug this project can have.
"""

from __future__ import annotations

import importlib.machinery
import os
import platform
import sys
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import xxhash

from normandy_core._escape import params_escape, writes_undeclared
from normandy_core._kept import KeptFile
from normandy_core._source import Source, read_source
from normandy_core._tracing._places import LIBRARY, PROJECT, STDLIB, origin
from normandy_core.fingerprint import ABSENT, Code
from normandy_core.signatures import module_file

__all__ = [
    "ProcessCode",
    "code_hash",
    "code_of",
    "follow",
    "library_version",
    "locate",
    "module_hash",
    "new_run",
    "process_code",
]

_MAX_MODULES = 500
"""How many project modules one process's imports are followed to, at most."""


@dataclass(frozen=True)
class ProcessCode:
    """What the orchestrator knows of a process from its source (once per run)."""

    code: Code
    projects: tuple[str, ...]
    """The project modules its code imports, followed."""
    libraries: tuple[str, ...]
    """The installed libraries (top-level names) its code imports."""
    params_escape: bool
    """Whether it may read ``params`` where the worker cannot see (then it counts as
    having read every param)."""
    writes_undeclared: bool
    """Whether it may write variables it does not declare (it takes ``pipe``)."""


def code_of(module: str, function: str) -> Code:
    """The :class:`Code` of the process ``module:function`` (``function`` may be a
    ``Class.method`` path: its class is what is kept)."""
    return process_code(module, function).code


def process_code(module: str, function: str) -> ProcessCode:
    """What the source of the process ``module:function`` tells (see :class:`ProcessCode`)."""
    path = module_file(module)
    python = platform.python_version()
    if path is None:  # compiled, or unknown: its distribution and Python stand for it
        code = Code(module, "", _distribution(module, None) or f"python=={python}")
        return ProcessCode(code, (), (), True, True)
    source = read_source(module, path)
    if source is None:
        return ProcessCode(Code(module, "", _distribution(module, path)), (), (), True, True)
    projects, libraries = follow([module], first=(source, function))
    imports = {name: value for name, value in projects.items() if name != module}
    imports.update({top: library_version(top) for top in libraries})
    imports["python"] = python
    installed = origin(str(path)) == LIBRARY
    followed = [s for s in (_source(m) for m in projects if m != module) if s is not None]
    return ProcessCode(
        Code(
            module,
            source.code_hash(function),
            _distribution(module, path),
            tuple(sorted(imports.items())),
        ),
        tuple(sorted(m for m in projects if m != module)),
        tuple(sorted(libraries)),
        installed or params_escape(source, function, _source),
        installed or writes_undeclared(source, function, followed),
    )


def code_hash(path: Path, function: str) -> str:
    """The hash of what ``function``'s result may depend on in the module at ``path``:
    everything but the definitions it does not reach (see :mod:`normandy_core._source`);
    ``""`` for a missing file."""
    source = read_source(path.stem, path)
    return "" if source is None else source.code_hash(function)


def _source(module: str) -> Source | None:
    """The source of a module of the project (``None``: not one, or not found)."""
    where, path = locate(module)
    if where != PROJECT or path is None or not path.endswith(".py"):
        return None
    return read_source(module, Path(path))


def follow(
    modules: Iterable[str], first: tuple[Source, str] | None = None
) -> tuple[dict[str, str], set[str]]:
    """What ``modules`` depend on through their imports, followed through the project's
    own modules: project module -> the hash of its source (``-``: it cannot be found),
    and the installed libraries (top-level names). ``first``: the source of the first of
    ``modules`` and the function of it whose imports alone count."""
    projects: dict[str, str] = {}
    libraries: set[str] = set()
    todo = deque(modules)
    seen = set(todo)
    while todo and len(projects) < _MAX_MODULES:
        name = todo.popleft()
        source: Source | None = None
        function: str | None = None
        if first is not None and name == first[0].module:
            source, function = first
            projects[name] = source.text_hash
        else:
            where, path = locate(name)
            if where is None:
                if name.partition(".")[0] not in sys.stdlib_module_names:
                    projects[name] = ABSENT  # not there now: if it comes, it counts
                continue
            if where == STDLIB:
                continue
            if where == LIBRARY:
                libraries.add(name.partition(".")[0])
                continue
            if path is not None and path.endswith(".py"):
                source = read_source(name, Path(path))
            projects[name] = source.code_hash("") if source is not None else _file_hash(path)
        if source is None:
            continue
        for imported in source.imports_of(function):
            maybe = imported.endswith("?")
            imported = imported.rstrip("?")
            if imported.partition(".")[0] in sys.stdlib_module_names:
                continue
            if maybe and imported not in seen and locate(imported)[0] is None:
                continue  # ``from a import b``: b is no module of a
            parts = imported.split(".")
            for i in range(1, len(parts) + 1):  # a package runs before its modules
                chain = ".".join(parts[:i])
                if chain not in seen:
                    seen.add(chain)
                    todo.append(chain)
    return projects, libraries


def locate(name: str) -> tuple[str | None, str | None]:
    """Where the module ``name`` comes from (``stdlib``, ``library``, ``project``;
    ``None``: nowhere) and its file, found as the import system would, without importing
    it or its packages."""
    loaded = sys.modules.get(name)
    if loaded is not None:
        file = getattr(loaded, "__file__", None)
        if file:
            return origin(os.path.abspath(file)), file
        return (STDLIB if name in sys.builtin_module_names else PROJECT), None
    parts = name.split(".")
    spec = None
    for finder in sys.meta_path:  # the top-level name: editable installs have finders
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(parts[0], None)
        except Exception:  # noqa: BLE001 - a finder that fails is one that does not know
            spec = None
        if spec is not None:
            break
    for i in range(1, len(parts)):
        locations = spec.submodule_search_locations if spec is not None else None
        if not locations:
            return None, None
        try:
            spec = importlib.machinery.PathFinder.find_spec(
                ".".join(parts[: i + 1]), list(locations)
            )
        except (ImportError, ValueError):
            spec = None
    if spec is None:
        return None, None
    if spec.origin in ("built-in", "frozen"):
        return STDLIB, None
    if spec.has_location and spec.origin:
        return origin(os.path.abspath(spec.origin)), spec.origin
    folders = list(spec.submodule_search_locations or [])
    return (origin(os.path.abspath(folders[0])) if folders else STDLIB), None


def _file_hash(path: str | None) -> str:
    if path is None:
        return ""
    try:
        return xxhash.xxh3_128_hexdigest(Path(path).read_bytes())
    except OSError:
        return ABSENT


_module_hashes: dict[tuple[str, str, tuple[int, int, int, int]], str] = {}
"""(module, file, the file's stamp) -> :func:`module_hash`: the module of a dataset type
is hashed once however many datasets use it, and again only once its file changed."""


def module_hash(name: str) -> str:
    """The hash of the whole source of the project module ``name`` now (``-``: there is
    none), as :func:`follow` notes it."""
    where, path = locate(name)
    if where is None:
        return ABSENT
    try:
        info = os.stat(path) if path is not None else None
    except OSError:
        info = None
    key = None
    if path is not None and info is not None:
        key = (name, path, (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino))
        found = _module_hashes.get(key)
        if found is not None:
            return found
    found = _module_source_hash(name, path)
    if key is not None:
        _module_hashes[key] = found
    return found


def _module_source_hash(name: str, path: str | None) -> str:
    if path is not None and path.endswith(".py"):
        source = read_source(name, Path(path))
        if source is not None:
            return source.code_hash("")
    return _file_hash(path)


# -- versions ------------------------------------------------------------------------------------

_versions: dict[str, str] = {}


def library_version(top: str) -> str:
    """The version of the installed distribution the library ``top`` (a top-level
    import name) comes from; ``-`` where none is installed."""
    found = _versions.get(top)
    if found is None:
        found = _versions[top] = _find_version(top).partition("==")[2] or ABSENT
    return found


def _distribution(module: str, path: Path | None) -> str:
    """``name==version`` of the installed distribution ``module`` comes from; empty for a
    module of the project itself (its source is what matters)."""
    if path is not None and origin(str(path)) != LIBRARY:
        return ""
    return _find_version(module.partition(".")[0])


_folders: list[tuple[str, str]] | None = None
_by_top: dict[str, str] | None = None
_unread: list[tuple[str, str]] = []
"""Metadata folders whose files are not read yet (last first: popped in ``sys.path``
order)."""
_listed: list[str] = []
"""Metadata folders whose ``top_level.txt`` was read."""


_kept_versions = KeptFile(None, 3)
"""Per metadata folder (``…dist-info``), its stamp, distribution name, version and
``top_level.txt``; per ``RECORD`` without one, the top-level modules it lists: kept in the
project's state folder between runs (``libraries.json``, :func:`new_run`). Reading every
``RECORD`` and ``METADATA`` to find which distribution installs ``dateutil`` or
``sklearn`` took tens of milliseconds in each run of a project using them. What changed
since (an upgrade, a reinstall) is read again."""


def new_run(state: Path | None = None) -> None:
    """Forget the libraries' versions looked up so far: a run sees the packages installed
    when it starts (a process that makes several runs may have upgraded some between).
    ``state``: the project's state folder, where what the distributions' metadata says
    is kept between runs."""
    global _folders, _by_top, _kept_versions
    _versions.clear()
    _folders = _by_top = None
    _unread.clear()
    _listed.clear()
    _kept_versions = KeptFile(state / "libraries.json" if state else None, 3)


def _normal(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _find_version(top: str) -> str:
    """``name==version`` of the installed distribution that holds the top-level module
    ``top`` (``sklearn`` -> ``scikit-learn==1.5.0``), from the distributions' metadata
    folders on ``sys.path``: the one named like the module, else the first whose files
    hold it (their lists read one by one, until it is found, once per run)."""
    global _folders, _by_top
    if _folders is None:
        _folders = _metadata_folders()
        _unread[:] = reversed(_folders)
    wanted = _normal(top)
    for entry, folder in _folders:
        if _normal(folder.rsplit(".", 1)[0].partition("-")[0]) == wanted:
            name, version = _kept(os.path.join(entry, folder), folder)[:2]
            if name:
                return f"{name}=={version}"
    if _by_top is None:
        _by_top = {}
    if top in _by_top:
        return _by_top[top]
    if not _listed:  # what each distribution says it installs, where it says it (cheap)
        for entry, folder in _folders:
            name, version, listed = _kept(os.path.join(entry, folder), folder)
            if listed:
                for module in listed:
                    _by_top.setdefault(module, f"{name}=={version}")
            _listed.append(folder)
        if top in _by_top:
            return _by_top[top]
    try:
        while _unread:  # else the lists of their files, one by one until it is found
            entry, folder = _unread.pop()
            base = os.path.join(entry, folder)
            name, version, listed = _kept(base, folder)
            for module in (listed or _recorded_tops(base)) if name else ():
                _by_top.setdefault(module, f"{name}=={version}")
            if top in _by_top:
                return _by_top[top]
        return ""
    finally:
        _kept_versions.save()


def _kept(base: str, folder: str) -> tuple[str, str, list[str]]:
    """A metadata folder's distribution name, version and ``top_level.txt``, as kept
    where the folder and its metadata are unchanged (pip writes a new folder, or replaces
    its files, for every install)."""
    meta = os.path.join(base, "METADATA" if folder.endswith(".dist-info") else "PKG-INFO")
    try:
        info, data = os.stat(base), os.stat(meta)
    except OSError:
        return (*_name_version(base, folder), _top_level(base))
    stamp = [info.st_mtime_ns, info.st_ino, data.st_size, data.st_mtime_ns, data.st_ino]
    kept = _kept_versions.get("folder:" + base, stamp)
    if kept is not None:
        return kept[0], kept[1], kept[2]
    name, version = _name_version(base, folder)
    listed = _top_level(base)
    _kept_versions.put("folder:" + base, [name, version, listed], stamp)
    return name, version, listed


def _recorded_tops(base: str) -> list[str]:
    """The top-level modules a distribution without ``top_level.txt`` installs, as its
    ``RECORD`` lists them (:func:`_tops`), kept while the ``RECORD`` is unchanged."""
    record = os.path.join(base, "RECORD")
    try:
        info = os.stat(record)
    except OSError:
        return _tops(base)
    stamp = [info.st_size, info.st_mtime_ns, info.st_ino]
    kept = _kept_versions.get("record:" + record, stamp)
    if kept is None:
        kept = _tops(base)
        _kept_versions.put("record:" + record, kept, stamp)
    return list(kept)


def _metadata_folders() -> list[tuple[str, str]]:
    """The distributions' metadata folders on ``sys.path``, in its order (the first wins,
    as for imports)."""
    found: list[tuple[str, str]] = []
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        found.extend((entry or ".", n) for n in names if n.endswith((".dist-info", ".egg-info")))
    return found


def _name_version(base: str, folder: str) -> tuple[str, str]:
    stem = folder.rsplit(".", 1)[0]
    name, _, version = stem.partition("-")
    metadata = os.path.join(base, "METADATA" if folder.endswith(".dist-info") else "PKG-INFO")
    try:
        with open(metadata, encoding="utf-8", errors="replace") as text:
            for line in text:
                if line.startswith("Name:"):
                    name = line[5:].strip()
                elif line.startswith("Version:"):
                    version = line[8:].strip()
                elif not line.strip():
                    break
    except OSError:
        if not version or not os.path.isdir(base):
            return "", ""
    return name, version.partition("-")[0] if folder.endswith(".egg-info") else version


def _top_level(base: str) -> list[str]:
    """The top-level modules a distribution's ``top_level.txt`` lists (none: it has none)."""
    try:
        with open(os.path.join(base, "top_level.txt"), encoding="utf-8") as text:
            return [line.strip().replace("/", ".") for line in text if line.strip()]
    except OSError:
        return []


def _tops(base: str) -> list[str]:
    """The top-level modules a distribution installs: its ``top_level.txt``, else the
    first parts of the paths its ``RECORD`` lists."""
    listed = _top_level(base)
    if listed:
        return listed
    tops: set[str] = set()
    try:
        with open(os.path.join(base, "RECORD"), encoding="utf-8", errors="replace") as text:
            for line in text:
                path = line.split(",", 1)[0]
                first = path.split("/", 1)[0]
                if not first or first.startswith("..") or first.endswith((".dist-info", ".data")):
                    continue
                if "/" in path or first.endswith((".py", ".so", ".pyd")):
                    tops.add(first.split(".", 1)[0])
    except OSError:
        pass
    return sorted(tops)
