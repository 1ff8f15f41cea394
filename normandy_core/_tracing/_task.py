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
from typing import Any, NamedTuple

from normandy_core._tracing import _hooks, _places
from normandy_core._tracing._hooks import Seen
from normandy_core._tracing._params import Params
from normandy_core.fingerprint import Keyed
from normandy_core.trace import ABSENT, EVERYTHING

NORMANDY = frozenset({"normandy_core", "normandy_cli"})
"""Normandy's own modules, which its code imports while a task runs (reading a variable):
what a task's code uses of Normandy is its version, where its own code imports it."""


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
    params_keys: bool = True
    """Whether to note the keys of ``params`` it reads (:class:`Params`). Not where its
    code hands ``params`` to code that cannot be followed: it counts as reading them all,
    and gets a plain ``dict`` (a library may want exactly one)."""


class TaskTrace(NamedTuple):
    """What a task did, as its worker saw it (the orchestrator adds what only it knows:
    the params' hashes, the modules' and libraries' versions). A named tuple: made for
    every task, it must cost next to nothing."""

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

    def __init__(self, setup: TraceSetup, module: str, params: dict[str, Any]) -> None:
        self.setup = setup
        self.module = module
        self.params = params
        self.seen = Seen()
        self._ignore = _folders(setup.ignore)
        self._before: tuple[str, ...] | None = None

    def start(self) -> None:
        _hooks.install()
        self._before = _places.extra
        _places.extra = self._ignore
        if self.setup.known:
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
        task = self.seen
        projects, libraries, untraced, read = _closure(
            self.module, self.setup.modules, self.setup.libraries
        )
        asked: set[str] = set()
        imported: tuple[str, ...] = ()
        if task.modules:
            asked = {n for n in task.modules if not n.endswith("?")}
            asked |= {n[:-1] for n in task.modules if n.endswith("?") and n[:-1] in sys.modules}
            asked = {n for n in asked if n.partition(".")[0] not in NORMANDY}
            allowed = frozenset({self.module, *self.setup.modules, *asked})
            more = _follow(self.module, asked, allowed, asked)
            projects = {**projects, **more[0]}
            libraries, untraced = libraries | more[1], untraced | more[2]
            read = _merged(read, more[3])
            code = (_places.LIBRARY, _places.PROJECT)
            imported = tuple(sorted(n for n in asked if _places.module_origin(n) in code))
        for path in task.written.intersection(task.files):
            # read, then written: as the task left it (a counter it keeps, a cache it
            # fills), so that it is not its own changed input the next time
            observed = _hooks.observe(path)
            if observed is not True and observed is not False:
                task.files[path] = observed
        seen = _merged(task, read) if _any(read) else task
        params = self.params
        keys: tuple[str, ...] = ()
        whole = params.whole if isinstance(params, Params) else True
        if isinstance(params, Params) and params.read:
            whole = whole or not all(isinstance(k, str) for k in params.read)
            keys = tuple(sorted(k for k in params.read if isinstance(k, str)))
        environ = files = folders = ()
        if seen.environ or seen.listed or seen.files or seen.folders:
            environ, files, folders = self._values(seen)
        return TaskTrace(
            keys,
            whole,
            environ,
            files,
            folders,
            tuple(sorted(projects.items())) if projects else (),
            tuple(sorted(libraries)) if libraries else (),
            tuple(dict.fromkeys(seen.programs)) if seen.programs else (),
            imported,
            tuple(sorted(p for p in task.written if self._kept(p))) if task.written else (),
            tuple(sorted(untraced)) if untraced else (),
        )

    def _values(self, seen: Seen) -> tuple[Any, Any, Any]:
        """The keyed hashes of what ``seen`` saw: environment variables, files, folders."""
        key = Keyed(self.setup.key)
        written = _hooks.environ_written()
        environ = {
            name: ABSENT if value is None else key(value)
            for name, value in seen.environ.items()
            if name not in written
        }
        if seen.listed:
            environ[EVERYTHING] = environ_listing(key, written, list(os.environ))
        files = {
            path: ABSENT if observed is None else file_stamp(key, *observed)
            for path, observed in seen.files.items()
            if self._kept(path)
        }
        folders = {
            path: ABSENT if digest is None else key.bytes(digest)
            for path, digest in seen.folders.items()
            if self._kept(path)
        }
        return (
            tuple(sorted(environ.items())),
            tuple(sorted(files.items())),
            tuple(sorted(folders.items())),
        )


_ignores: dict[tuple[str, ...], tuple[str, ...]] = {}


def _folders(paths: tuple[str, ...]) -> tuple[str, ...]:
    found = _ignores.get(paths)
    if found is None:
        found = _ignores[paths] = tuple(_places.folder(p) for p in paths)
    return found


Closure = tuple[dict[str, bool], frozenset[str], frozenset[str], Seen]
"""Project modules (-> whether each is there), libraries, project modules whose import
was not seen, and what they all read while imported."""

_closures: dict[tuple[str, tuple[str, ...], tuple[str, ...]], tuple[int, Closure]] = {}


def _closure(module: str, modules: tuple[str, ...], libraries: tuple[str, ...]) -> Closure:
    """What a process of ``module`` depends on through the modules its function's code
    imports (from its source): the same for each of its tasks, while no module is
    imported meanwhile (then it is looked at again)."""
    key = (module, modules, libraries)
    found = _closures.get(key)
    if found is not None and found[0] == _hooks.loads:
        return found[1]
    allowed = frozenset({module, *modules})
    closure = _follow(module, {module, *modules, *libraries}, allowed, set())
    _closures[key] = (_hooks.loads, closure)
    return closure


def _follow(module: str, roots: set[str], allowed: frozenset[str], asked: set[str]) -> Closure:
    """The project modules (-> whether each is there) and libraries that ``roots``
    depend on through their imports, as this process saw them imported (a project module
    only where ``allowed``, or imported by one allowed but ``module``, whose imports
    count only as its function's code uses them), and what they read when imported."""
    projects: dict[str, bool] = {}
    libraries: set[str] = set()
    untraced: set[str] = set()
    read = Seen()
    allowed_now = set(allowed)
    todo = list(roots)
    done: set[str] = set()
    tops: set[str] = set()
    while todo:
        name = todo.pop()
        if name in done or name.partition(".")[0] in NORMANDY:
            continue
        done.add(name)
        parent = name.rpartition(".")[0]
        if parent:  # a package's __init__ runs before its modules
            todo.append(parent)
            if name in allowed_now:
                allowed_now.add(parent)
        where = _places.module_origin(name)
        if where == _places.NONE:
            if name in asked and name not in sys.modules:
                projects[name] = False  # asked for, not there: it may appear
            continue
        if where == _places.STDLIB:
            continue
        if where == _places.LIBRARY:
            top = name.partition(".")[0]
            if top not in tops:  # a library's closure is its top-level package's
                tops.add(top)
                closure, imported = _library(top)
                libraries |= closure
                if _any(imported):
                    _merge(read, imported)
            continue
        if name not in allowed_now:
            continue  # imported by a module whose code the function does not use
        if name != module:
            projects[name] = True
        found = _hooks.imported(name)
        if found is None:
            untraced.add(name)
            continue
        _merge(read, found)
        if name != module:  # the process module's imports: its function's only
            for asked_by in found.modules:
                asked_name = asked_by.rstrip("?")
                if asked_by.endswith("?") and asked_name not in sys.modules:
                    continue
                allowed_now.add(asked_name)
                todo.append(asked_name)
    return projects, frozenset(libraries), frozenset(untraced), read


def _any(seen: Seen) -> bool:
    return bool(seen.files or seen.folders or seen.environ or seen.listed or seen.programs)


def _merged(first: Seen, second: Seen) -> Seen:
    out = Seen()
    _merge(out, first)
    _merge(out, second)
    return out


class _Libraries:
    """The installed libraries, as this process saw them imported: for each (top-level
    name), the libraries its modules imported in turn and what they read then. Brought up
    to date, from the modules imported since, when a task asks."""

    def __init__(self) -> None:
        self.seen = 0
        self.edges: dict[str, set[str]] = {}
        self.reads: dict[str, Seen] = {}
        self.closures: dict[str, tuple[frozenset[str], Seen]] = {}

    def update(self) -> None:
        count = _hooks.modules_count()
        if count == self.seen:
            return
        for name, seen in _hooks.modules_imported(self.seen):
            if _places.module_origin(name) != _places.LIBRARY:
                continue
            top = name.partition(".")[0]
            edges = self.edges.setdefault(top, set())
            for asked in seen.modules:
                module = asked.rstrip("?")
                other = module.partition(".")[0]
                if other != top and _places.module_origin(module) == _places.LIBRARY:
                    edges.add(other)
            if _any(seen):
                _merge(self.reads.setdefault(top, Seen()), seen)
        self.seen = count
        self.closures.clear()

    def closure(self, name: str) -> tuple[frozenset[str], Seen]:
        """The libraries (top-level names) that importing the library module ``name``
        imported, its own included, and what they read then."""
        self.update()
        top = name.partition(".")[0]
        found = self.closures.get(top)
        if found is None:
            tops: set[str] = set()
            read = Seen()
            todo = [top]
            while todo:
                current = todo.pop()
                if current in tops:
                    continue
                tops.add(current)
                if current in self.reads:
                    _merge(read, self.reads[current])
                todo.extend(self.edges.get(current, ()))
            found = self.closures[top] = (frozenset(tops), read)
        return found


_known_libraries = _Libraries()


def _library(name: str) -> tuple[frozenset[str], Seen]:
    return _known_libraries.closure(name)


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
