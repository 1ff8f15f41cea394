"""A flow's variables in one run: committed by the orchestrator (:class:`FlowStore`), read
and written by a task (:class:`Variables`, which is ``pipe.vars``)."""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from normandy_core.store._format import content_hash, decode, encode
from normandy_core.store._places import Place, place, read_variable

SUFFIX = ".nv"
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+\Z")
_OUTPUT_RE = re.compile(r"[A-Za-z0-9_.-]+\[[A-Za-z0-9_.~=,+@%\[\]-]+\]\Z")
"""An element's output: ``NAME[KEY]`` (the key as :func:`file_part` writes it), made by
Normandy for each task of a ``map`` (SPEC 19), never by a process."""
_MISSING = object()


FILE_PART_MAX = 128
"""The longest :func:`file_part` kept as it is, in bytes. Longer ones are shortened to
between ``FILE_PART_MAX + 1`` and ``FILE_PART_MAX + 3`` bytes: with the longest prefix and
suffix Normandy adds (``process-`` and ``.log``) a file name stays within 143 bytes, the
smallest name limit of the file systems in common use (eCryptfs; 255 elsewhere)."""

_HASH_CHARS = 16
_PLAIN = re.compile(r"[A-Za-z0-9_.~=,+@\[\]-]*")
"""The characters :func:`file_part` keeps as they are (``urllib.parse.quote``'s)."""


def file_part(text: str) -> str:
    """``text`` as one file name: readable, never ``..``, bounded in bytes, unique.

    Characters outside ``[A-Za-z0-9_.~=,+@[]-]`` are %-encoded (``/`` -> ``%2F``), which
    keeps the name reversible. A name longer than :data:`FILE_PART_MAX` bytes keeps its
    readable beginning and ends with ``~`` and a hash of the whole text
    (``f.s.fetch[%2Fdata%2F…~1f2e3d4c5b6a7988``); being longer than every name kept as it
    is, a shortened name can only equal another shortened one, from the same hash.
    """
    if len(text) <= FILE_PART_MAX and _PLAIN.fullmatch(text) and ".." not in text:
        return text  # what quoting would leave as it is (most keys): a run asks per task
    quoted = urllib.parse.quote(text, safe="[]=.-_,+@", errors="surrogatepass")
    if ".." in quoted:
        quoted = quoted.replace("..", "%2E%2E")
    if len(quoted) <= FILE_PART_MAX:  # %-encoded: ASCII, one byte per character
        return quoted
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    keep = FILE_PART_MAX + 3 - len(digest) - 1
    head = quoted[:keep]
    cut = head.rfind("%", keep - 2)
    if cut != -1:  # never half of a %XX escape
        head = head[:cut]
    return f"{head}~{digest}"


def check_name(name: object) -> str:
    """Return ``name`` if it is a valid variable name, else raise ``ValueError``."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
        raise ValueError(
            f"invalid variable name {name!r}: use letters, digits, '_', '.' and '-' "
            "(no path separators, not '.' or '..')"
        )
    return name


def check_output_name(name: str) -> str:
    """Return ``name`` if it is a variable name, or the name of an element's output
    (``NAME[KEY]``); else raise ``ValueError``."""
    if isinstance(name, str) and _OUTPUT_RE.match(name) and ".." not in name:
        return name
    return check_name(name)


class UndeclaredRead(Exception):
    """Under ``confs.schedule: dataflow``, a task read (through ``pipe.vars``) a variable
    its entry does not declare: refused, as what it gets would depend on timing."""


class FlowStore:
    """The committed variables of one flow in one run (``run_dir``: the run's folder of
    the store, a path or a URL)."""

    def __init__(self, run_dir: Path | str | Place, flow: str) -> None:
        run = place(run_dir)
        self.flow = flow
        self.vars_dir = run / "vars" / file_part(flow)
        self.staging_root = run / "staging" / file_part(flow)
        self._staging: dict[str, Place] = {}

    def path(self, name: str) -> Place:
        return self.vars_dir / (check_name(name) + SUFFIX)

    def names(self) -> list[str]:
        return [n[: -len(SUFFIX)] for n in self.vars_dir.names(SUFFIX)]

    def staging(self, task_key: str) -> Place:
        found = self._staging.get(task_key)
        if found is None:  # asked for three times per task: made once
            found = self._staging[task_key] = self.staging_root / file_part(task_key)
        return found

    def staged_names(self, task_key: str) -> list[str]:
        return [n[: -len(SUFFIX)] for n in self.staging(task_key).names(SUFFIX)]

    def commit(self, task_key: str, names: list[str] | None = None) -> list[str]:
        """Move a task's staged writes (``names``, where the caller knows them: else they
        are listed) into the flow's variables; return their names."""
        folder = self.staging(task_key)
        names = self.staged_names(task_key) if names is None else names
        for name in names:
            (folder / (name + SUFFIX)).move_to(self.vars_dir / (name + SUFFIX))
        folder.remove()
        return names

    def discard(self, task_key: str) -> None:
        """Drop a task's staged writes (it failed)."""
        self.staging(task_key).remove()


class Variables:
    """``pipe.vars``: what one task reads and writes.

    Reads see the task's own writes first, then the values committed by earlier steps.
    What the task takes from earlier steps is noted (lineage, SPEC 12; reuse, SPEC 13):
    in :attr:`reads` each value read, with its content hash and size (``None``: it was
    looked for and did not exist); in :attr:`checked` the names whose existence it
    tested; :attr:`listed`, whether it listed the names. :attr:`writes` holds each value
    it wrote, with its hash, size and type.
    """

    def __init__(
        self,
        vars_dir: Path | str | Place,
        staging_dir: Path | str | Place,
        declared: Iterable[str] | None = None,
    ) -> None:
        self._vars_dir = place(vars_dir)
        self._staging_dir = place(staging_dir)
        self._declared = None if declared is None else frozenset(declared)
        """Under ``schedule: dataflow``, the variables of other tasks it may read."""
        self.reads: dict[str, tuple[str, int] | None] = {}
        self.writes: dict[str, tuple[str, int, str]] = {}
        self.checked: dict[str, bool] = {}
        self.listed = False

    def update(self, name: str, value: Any) -> None:
        """Store ``value`` as ``name`` (committed when the task succeeds)."""
        self._write(check_name(name), value)

    def _write(self, name: str, value: Any, folder: Place | None = None) -> None:
        file = (folder or self._staging_dir) / (name + SUFFIX)
        encoded = encode(name, value)
        file.write(encoded)
        kind = type(value)
        self.writes[name] = (encoded.hash, encoded.size, f"{kind.__module__}.{kind.__qualname__}")

    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name``, or ``default`` where it is missing."""
        value = self._read(check_name(name))
        return default if value is _MISSING else value

    def value(self, name: str) -> Any:
        """The value of ``name``; a plain ``KeyError(name)`` where it is missing (for
        inputs: the caller says what is missing, without listing the names)."""
        value = self._read(check_name(name))
        if value is _MISSING:
            raise KeyError(name)
        return value

    def __getitem__(self, name: str) -> Any:
        value = self._read(check_name(name))
        if value is _MISSING:
            known = ", ".join(self._names()) or "none"
            raise KeyError(f"no variable {name!r} in this flow (known: {known})")
        return value

    def __setitem__(self, name: str, value: Any) -> None:
        self.update(name, value)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or _NAME_RE.match(name) is None or name in (".", ".."):
            return False
        if (self._staging_dir / (name + SUFFIX)).exists():
            return True
        self._allowed(name)
        found = (self._vars_dir / (name + SUFFIX)).exists()
        self.checked.setdefault(name, found)
        return found

    def keys(self) -> list[str]:
        if self._declared is not None:
            raise UndeclaredRead(
                "it listed the variables (pipe.vars.keys()), which under confs.schedule: "
                "dataflow depend on which tasks have ended so far; read the variables it "
                "declares (inputs) by name"
            )
        self.listed = True
        return self._names()

    def _names(self) -> list[str]:
        names: set[str] = set()
        for folder in (self._staging_dir, self._vars_dir):
            names.update(n[: -len(SUFFIX)] for n in folder.names(SUFFIX))
        return sorted(names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def _read(self, name: str) -> Any:
        staged = self._staging_dir / (name + SUFFIX)
        try:
            return decode(read_variable(staged), str(staged))  # its own write
        except (FileNotFoundError, IsADirectoryError):
            pass
        self._allowed(name)
        file = self._vars_dir / (name + SUFFIX)
        try:
            data = read_variable(file)
        except (FileNotFoundError, IsADirectoryError):
            self.reads.setdefault(name, None)
            return _MISSING
        self.reads[name] = (content_hash(data), len(data))
        return decode(data, str(file))

    def _allowed(self, name: str) -> None:
        """Refuse a read of another task's variable that was not declared (dataflow)."""
        if self._declared is not None and name not in self._declared:
            declared = ", ".join(sorted(self._declared)) or "none"
            raise UndeclaredRead(
                f"it read the variable {name!r} through pipe.vars, which its entry does not "
                f"declare (it declares: {declared}); under confs.schedule: dataflow a task "
                f"starts once what it declares is written, so {name!r} might not be yet: "
                f"add it to the entry's inputs (inputs: [{name}]) or take it as a parameter"
            )


def store_output(
    variables: Variables, name: str, value: Any, folder: Path | str | Place | None = None
) -> None:
    """Write a declared output (or an element's, ``NAME[KEY]``) as ``variables``' task's
    write: staged, or straight into ``folder`` (an element's output, which no process can
    read by its name: nothing to commit, see :class:`~normandy_core.worker.TaskCall`)."""
    variables._write(check_output_name(name), value, place(folder) if folder else None)
