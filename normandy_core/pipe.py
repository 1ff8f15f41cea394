"""What a process sees of its run: the ``pipe`` argument (SPEC 4) and
``variables_storage()`` for code written against the original API."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from normandy_core.store import Variables

_current: contextvars.ContextVar[Pipe | None] = contextvars.ContextVar(
    "normandy_pipe", default=None
)


@dataclass
class Pipe:
    """The process's view of the run."""

    env: str
    confs: Mapping[str, Any]
    credentials: Mapping[str, Any] = field(repr=False)
    """Never in a repr: a failing test's report shows its arguments' reprs."""
    path: Path
    vars: Variables
    params: dict[str, Any]
    run_id: str
    flow: str
    step: str
    process: str
    task: str
    tags: tuple[str, ...] = field(default_factory=tuple)

    def get_env_confs(self) -> Mapping[str, Any]:
        """The active environment's settings (``confs.envs.<env>``), as in normandy 0.3."""
        return self.confs

    def get_path(self) -> Path:
        """The project root, as in normandy 0.3."""
        return self.path


class ScopedVariables(Variables):
    """``pipe.vars`` of a template's task (SPEC 20): each name it reads, writes or looks
    for is the template's, ``rename`` gives the flow's (``linear.X_train``, or the
    variable the use maps it to). The names it lists are the flow's. What it reads and
    writes is noted by the storage it wraps."""

    def __init__(self, base: Variables, rename: Callable[[str], str]) -> None:
        # no Variables.__init__: every method goes to ``base``, which keeps the lineage
        self._base = base
        self._rename = rename

    def update(self, name: str, value: Any) -> None:
        self._base.update(self._rename(name), value)

    def get(self, name: str, default: Any = None) -> Any:
        return self._base.get(self._rename(name), default)

    def value(self, name: str) -> Any:
        return self._base.value(self._rename(name))

    def __getitem__(self, name: str) -> Any:
        return self._base[self._rename(name)]

    def __setitem__(self, name: str, value: Any) -> None:
        self._base[self._rename(name)] = value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._rename(name) in self._base

    def keys(self) -> list[str]:
        return self._base.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)


def variables_storage() -> Variables:
    """The variables storage of the process that is running now.

    Raises ``RuntimeError`` outside a process run by Normandy.
    """
    pipe = _current.get()
    if pipe is None:
        raise RuntimeError("variables_storage() is only available inside a process run by Normandy")
    return pipe.vars


def set_current(pipe: Pipe | None) -> contextvars.Token[Pipe | None]:
    return _current.set(pipe)


def reset_current(token: contextvars.Token[Pipe | None]) -> None:
    _current.reset(token)
