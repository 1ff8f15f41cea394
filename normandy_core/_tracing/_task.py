"""Recording one task's trace, in the process that runs it: :class:`Recording` from just
before the process's function is called to just after it returns, then
:meth:`Recording.finish` turns what was seen into a :class:`TaskTrace` (plain data, sent
back in the task's result; the orchestrator makes it the trace of the fingerprint).

The modules a task depends on are those its function's own code imports (found in the
source by the orchestrator: ``TraceSetup.modules`` and ``libraries``) and those it asked
for while it ran, followed: a project module through what it imports in turn, a library
through its own imports (so a library's own dependency counts) — as this process saw them
imported. What each of them read while it was imported (a settings file read at import
time) is the task's read too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from normandy_core._tracing import _hooks, _places
from normandy_core._tracing._hooks import Seen
from normandy_core._tracing._params import Params
from normandy_core.fingerprint import Keyed
from normandy_core.trace import ABSENT, EVERYTHING


@dataclass(frozen=True)
class TraceSetup:
    """What a worker needs to record a task's trace (in its :class:`TaskCall`)."""

    key: bytes
    """The project's key, for the hashes of values that may be secret."""
    ignore: tuple[str, ...] = ()
    """Folders whose files are no input (the store, the history)."""
    modules: tuple[str, ...] = ()
    """The project modules the process's code imports (from its source)."""
    libraries: tuple[str, ...] = ()
    """The libraries (top-level names) it imports."""
    known: tuple[tuple[str, str], ...] = ()
    """Files it read when it last ran, as recorded (path -> stamp and hash): a file whose
    stamp is unchanged is not hashed again."""


@dataclass(frozen=True)
class TaskTrace:
    """What a task did, as its worker saw it (the orchestrator adds what only it knows:
    the params' hashes, the modules' and libraries' versions)."""

    params: tuple[str, ...] = ()
    """The keys of ``params`` it read."""
    params_whole: bool = False
    """Whether it read ``params`` whole (iterated it, passed it on…)."""
    environ: tuple[tuple[str, str], ...] = ()
    """Environment variable -> the keyed hash of its value (or ``-``); ``*``: the names."""
    files: tuple[tuple[str, str], ...] = ()
    """File read -> ``size:mtime_ns:ctime_ns:inode:hash`` (or ``-``: it did not exist)."""
    folders: tuple[tuple[str, str], ...] = ()
    """Folder listed -> the keyed hash of its entries (or ``-``)."""
    modules: tuple[tuple[str, bool], ...] = ()
    """Project modules it imported or ran (besides its own module), and whether each
    could be imported."""
    libraries: tuple[str, ...] = ()
    """Installed libraries (top-level names) its code imported, followed."""
    programs: tuple[str, ...] = ()
    """Programs it started (what they read is not known)."""
    imported: tuple[str, ...] = ()
    """Modules it imported while it ran (for preloading them next time)."""
    written: tuple[str, ...] = ()
    """Files it opened for writing."""
    untraced: tuple[str, ...] = ()
    """Project modules it uses whose import this process did not see (what they read
    then is not known)."""


def install() -> None:
    _hooks.install()


class Recording:
    """The recording of one task: :meth:`start`, run the process, :meth:`finish`."""

    def __init__(self, setup: TraceSetup, module: str, params: Params) -> None:
        self.setup = setup
        self.module = module
        self.params = params
        self.seen = Seen()
        self._ignore = tuple(_places.folder(p) for p in setup.ignore)
        self._before: tuple[str, ...] | None = None

    def start(self) -> None:
        _hooks.install()
        self._before = _places.extra
        _places.extra = self._ignore
        _hooks.known.update(_known(self.setup.known))
        _hooks.active.append(self.seen)

    def stop(self) -> None:
        """Stop recording (the task's function returned or raised)."""
        if self.seen in _hooks.active:
            _hooks.active.remove(self.seen)
        if self._before is not None:
            _places.extra, self._before = self._before, None
            _hooks.known.clear()

    def finish(self) -> TaskTrace:
        """Stop recording; the task's trace."""
        self.stop()
        return self._trace()

    def _kept(self, path: str) -> bool:
        return not (_places.ignored(path) or path.startswith(self._ignore))

    def _trace(self) -> TaskTrace:
        key = Keyed(self.setup.key)
        seen = Seen()
        _merge(seen, self.seen)
        asked = {name for name in self.seen.modules if not name.endswith("?")}
        asked |= {n[:-1] for n in self.seen.modules if n.endswith("?") and n[:-1] in sys.modules}
        projects, libraries, untraced = self._follow(asked, seen)
        written = _hooks.environ_written()
        environ = {
            name: ABSENT if value is None else key(value)
            for name, value in seen.environ.items()
            if name not in written
        }
        if seen.listed:
            environ[EVERYTHING] = environ_listing(key, written, list(os.environ))
        files = {}
        for path, observed in seen.files.items():
            if self._kept(path):
                files[path] = ABSENT if observed is None else file_stamp(key, *observed)
        folders = {
            path: ABSENT if digest is None else key.bytes(digest)
            for path, digest in seen.folders.items()
            if self._kept(path)
        }
        imported = sorted(
            name
            for name in asked
            if _places.module_origin(name) in (_places.LIBRARY, _places.PROJECT)
        )
        return TaskTrace(
            params=tuple(sorted(str(k) for k in self.params.read if isinstance(k, str))),
            params_whole=self.params.whole or any(not isinstance(k, str) for k in self.params.read),
            environ=tuple(sorted(environ.items())),
            files=tuple(sorted(files.items())),
            folders=tuple(sorted(folders.items())),
            modules=tuple(sorted(projects.items())),
            libraries=tuple(sorted(libraries)),
            programs=tuple(dict.fromkeys(seen.programs)),
            imported=tuple(imported),
            written=tuple(sorted(p for p in self.seen.written if self._kept(p))),
            untraced=tuple(sorted(untraced)),
        )

    def _follow(self, asked: set[str], seen: Seen) -> tuple[dict[str, bool], set[str], set[str]]:
        """The project modules (-> whether each is there) and libraries the task depends
        on; what they read while imported is added to ``seen``."""
        projects: dict[str, bool] = {}
        libraries: set[str] = set()
        untraced: set[str] = set()
        allowed = {self.module, *self.setup.modules, *asked}
        todo = [self.module, *self.setup.modules, *self.setup.libraries, *asked]
        done: set[str] = set()
        while todo:
            name = todo.pop()
            if name in done:
                continue
            done.add(name)
            parent = name.rpartition(".")[0]
            if parent:  # a package's __init__ runs before its modules
                todo.append(parent)
                if name in allowed:
                    allowed.add(parent)
            where = _places.module_origin(name)
            if where == _places.NONE:
                if name in asked and name not in sys.modules:
                    projects[name] = False  # asked for, not there: it may appear
                continue
            if where == _places.STDLIB:
                continue
            if where == _places.LIBRARY:
                closure, read = _library(name)
                libraries |= closure
                _merge(seen, read)
                continue
            if name not in allowed:
                continue  # imported by a module whose code the function does not use
            if name != self.module:
                projects[name] = True
            found = _hooks.imported(name)
            if found is None:
                untraced.add(name)
                continue
            _merge(seen, found)
            if name != self.module:  # the process module's imports: its function's only
                for asked_by in found.modules:
                    asked_name = asked_by.rstrip("?")
                    if asked_by.endswith("?") and asked_name not in sys.modules:
                        continue
                    allowed.add(asked_name)
                    todo.append(asked_name)
        return projects, libraries, untraced


_libraries: dict[str, tuple[frozenset[str], Seen]] = {}


def _library(name: str) -> tuple[frozenset[str], Seen]:
    """The libraries (top-level names) that importing the library module ``name``
    imported, itself included, and what they read then (once per process)."""
    found = _libraries.get(name)
    if found is not None:
        return found
    tops: set[str] = set()
    read = Seen()
    todo, done = [name], set()
    while todo:
        module = todo.pop()
        if module in done:
            continue
        done.add(module)
        if _places.module_origin(module) != _places.LIBRARY:
            continue
        tops.add(module.partition(".")[0])
        parent = module.rpartition(".")[0]
        if parent:
            todo.append(parent)
        imports = _hooks.imported(module)
        if imports is None:
            continue
        _merge(read, imports)
        todo.extend(m.rstrip("?") for m in imports.modules)
    found = _libraries[name] = (frozenset(tops), read)
    return found


def _merge(into: Seen, more: Seen) -> None:
    for path, observed in more.files.items():
        into.files.setdefault(path, observed)
    for path, digest in more.folders.items():
        into.folders.setdefault(path, digest)
    for name, value in more.environ.items():
        into.environ.setdefault(name, value)
    into.listed = into.listed or more.listed
    into.programs.extend(p for p in more.programs if p not in into.programs)


def file_stamp(key: Keyed, stamp: tuple[int, int, int, int], digest: bytes | str) -> str:
    """A file as a trace notes it: ``size:mtime_ns:ctime_ns:inode:keyed hash``."""
    size, mtime, ctime, inode = stamp
    keyed = digest if isinstance(digest, str) else key.bytes(digest)
    return f"{size}:{mtime}:{ctime}:{inode}:{keyed}"


def parse_stamp(text: str) -> tuple[tuple[int, int, int, int], str] | None:
    parts = text.split(":")
    if len(parts) != 5:
        return None
    try:
        size, mtime, ctime, inode = (int(p) for p in parts[:4])
    except ValueError:
        return None
    return (size, mtime, ctime, inode), parts[4]


def _known(recorded: tuple[tuple[str, str], ...]) -> dict[tuple[str, Any], str]:
    out = {}
    for path, text in recorded:
        parsed = parse_stamp(text)
        if parsed is not None:
            out[(path, parsed[0])] = parsed[1]
    return out


def environ_listing(key: Keyed, left_out: Iterable[str], names: Iterable[str]) -> str:
    """The keyed hash of the environment variables' ``names`` but those ``left_out``
    (private to Normandy, or set by the code of the process that read them), followed by
    those left out: ``hash:NAME,NAME``."""
    skipped = sorted(set(left_out) | set(_hooks.PRIVATE_ENVIRON))
    kept = sorted(set(names) - set(skipped))
    return f"{key(kept)}:{','.join(skipped)}"
