"""What a dataset type is: :class:`Dataset` (the protocol, for any store: a table of a
database, an API…) and :class:`FileDataset` (one file, local or behind fsspec, written
atomically), with the plain data they take (:class:`DatasetConfig`) and give
(:class:`Stamp`, :class:`Staged`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import IO, Any, ClassVar

from normandy_core.datasets._files import Files, etag_of, file_hash, files_for, mtime_of

_EMPTY: Mapping[str, Any] = MappingProxyType({})

@dataclass(frozen=True)
class DatasetConfig:
    """A dataset as its type receives it: its declaration with the env applied."""

    name: str
    type: str
    path: str | None = None
    """A local path made absolute (relative paths are relative to the project root), or a
    URL; for a versioned dataset, the file of one version."""
    load_args: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    """Keyword arguments of the library call that reads it, passed through."""
    save_args: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    """Keyword arguments of the library call that writes it, passed through."""
    fs_args: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    """fsspec's storage options for a URL (``anon``, ``endpoint_url``…)."""
    credentials: Any = None
    """The value of the env's credentials entry named by ``credentials:``, else ``None``
    (in :meth:`Dataset.check`, where the env's credentials are not read: the entry's
    name). Never shown: Normandy masks its values wherever a task logs them."""
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    """The type's own keys (``Dataset.options``: ``table``, ``query``…)."""
    root: str = "."
    """The project root."""


@dataclass(frozen=True)
class Stamp:
    """What a dataset is now, cheaply (from ``fs.info()``: no content read): its size in
    bytes, modification time and entity tag, where the store gives them. Equal stamps
    mean unchanged content as far as a cheap look can tell; ``Stamp()`` (all ``None``)
    means it exists but nothing cheap tells its changes."""

    size: int | None = None
    mtime: float | None = None
    etag: str | None = None

    @classmethod
    def of(cls, info: Mapping[str, Any]) -> Stamp:
        """The stamp in fsspec's ``info()`` answer (``size``, ``mtime`` or
        ``LastModified``…, ``ETag``…)."""
        size = info.get("size")
        return cls(int(size) if isinstance(size, int) else None, mtime_of(info), etag_of(info))

    @property
    def known(self) -> bool:
        """Whether anything cheap tells this dataset's changes."""
        return (self.size, self.mtime, self.etag) != (None, None, None)


@dataclass
class Staged:
    """A save prepared but not yet visible: :meth:`commit` makes it the dataset's
    content, :meth:`discard` drops it (the previous content stays). A task's datasets are
    committed together once every one of them is staged."""

    commit: Callable[[], None]
    discard: Callable[[], None] = lambda: None
    content_hash: str | None = None
    """The content hash of what is saved, where computed while staging."""
    deferred: bool = False
    """Whether the data is written at commit (which can then still fail), rather than
    staged already (a temporary file, renamed at commit)."""


class Dataset(ABC):
    """A dataset type: how one kind of data is loaded, saved and stamped.

    Registered under a name (``type: csv``) by an entry point of the group
    ``normandy.datasets``; Normandy makes one instance per use, from a
    :class:`DatasetConfig`, in the process where it is used (a worker, for a task).
    Import heavy libraries (pandas…) inside :meth:`load` and :meth:`save`, never at the
    module's top: listing and validating a project import the type's module."""

    required: ClassVar[tuple[str, ...]] = ("path",)
    """Keys a declaration of this type must have."""
    options: ClassVar[tuple[str, ...]] = ()
    """Keys of its own it takes besides the common ones (``type``, ``path``,
    ``load_args``, ``save_args``, ``fs_args``, ``versioned``, ``credentials``), given to it
    in ``DatasetConfig.options``."""
    loads: ClassVar[bool] = True
    """Whether it can be read (a chart written as HTML cannot): a task reading one that
    cannot is refused before running."""
    saves: ClassVar[bool] = True
    """Whether it can be written (a SQL query cannot)."""
    versionable: ClassVar[bool] = False
    """Whether ``versioned: true`` works for it (files: ``PATH/RUN_ID/NAME``)."""

    def __init__(self, config: DatasetConfig) -> None:
        self.config = config
        self.name = config.name
        self.path = config.path
        self.load_args = dict(config.load_args)
        self.save_args = dict(config.save_args)

    @classmethod
    def check(cls, config: DatasetConfig) -> list[tuple[str, str]]:
        """Problems of a declaration, as ``(key, message)``, found without I/O: by
        default, the :attr:`required` keys that are missing. Override to add the type's
        own rules (call ``super().check(config)``)."""
        given = {"path": config.path, **config.options}
        missing = [key for key in cls.required if not given.get(key)]
        return [(key, f"missing required key {key!r}") for key in missing]

    @abstractmethod
    def load(self) -> Any:
        """The data."""

    @abstractmethod
    def save(self, data: Any) -> None:
        """Write ``data`` (atomically where the store allows)."""

    @abstractmethod
    def stamp(self) -> Stamp | None:
        """What it is now, cheaply (see :class:`Stamp`); ``None`` where it does not
        exist. Must not read its content."""

    def exists(self) -> bool:
        return self.stamp() is not None

    def content_hash(self) -> str | None:
        """A hash of its content where reading it again is cheap, else ``None``."""
        return None

    def stage(self, data: Any) -> Staged:
        """Prepare saving ``data`` (see :class:`Staged`); by default the save happens at
        commit. :class:`FileDataset` writes a temporary file here, renamed at commit."""
        return Staged(lambda: self.save(data), deferred=True)

    def describe(self) -> str:
        """What it is, for messages and listings: ``csv data/companies.csv``."""
        return f"{self.config.type} {self.path}" if self.path else self.config.type


class FileDataset(Dataset):
    """A dataset that is one file: a local path or any fsspec URL.

    Subclasses implement :meth:`read` and :meth:`write` over an open binary file. Saving
    writes a temporary file beside the target and renames it into place (on object
    stores, which have no rename, an upload is published whole): a reader never sees half
    a file, and a failed task leaves the previous file in place."""

    versionable = True

    def __init__(self, config: DatasetConfig) -> None:
        super().__init__(config)
        self._files: tuple[Files, str] | None = None

    @property
    def files(self) -> tuple[Files, str]:
        """Its file system and its path there (fsspec is imported only for a URL)."""
        if self._files is None:
            assert self.path is not None, "a file dataset has a path"
            options = dict(self.config.fs_args)
            if isinstance(self.config.credentials, Mapping):
                options.update(self.config.credentials)
            self._files = files_for(self.path, options)
        return self._files

    @abstractmethod
    def read(self, file: IO[bytes]) -> Any:
        """The data in ``file`` (open for reading, binary), with :attr:`load_args`."""

    @abstractmethod
    def write(self, data: Any, file: IO[bytes]) -> None:
        """Write ``data`` to ``file`` (open for writing, binary), with :attr:`save_args`."""

    def load(self) -> Any:
        files, path = self.files
        with files.open(path, "rb") as handle:
            return self.read(handle)

    def save(self, data: Any) -> None:
        self.stage(data).commit()

    def stage(self, data: Any) -> Staged:
        files, path = self.files
        files.makedirs(files.parent(path))
        if not files.renames:  # an object store: the upload is published whole
            return Staged(lambda: self._write_to(files, path, data), deferred=True)
        tmp = files.temporary(path)
        try:
            self._write_to(files, tmp, data)
            digest = file_hash(files, tmp) if files.cheap else None
        except BaseException:
            files.rm(tmp)
            raise
        return Staged(lambda: files.mv(tmp, path), lambda: files.rm(tmp), digest)

    def _write_to(self, files: Files, path: str, data: Any) -> None:
        with files.open(path, "wb") as handle:
            self.write(data, handle)

    def stamp(self) -> Stamp | None:
        files, path = self.files
        try:
            return Stamp.of(files.info(path))
        except FileNotFoundError:
            return None

    def content_hash(self) -> str | None:
        files, path = self.files
        if not files.cheap:
            return None
        try:
            return file_hash(files, path)
        except FileNotFoundError:
            return None
