"""What a process sees of its run: the ``pipe`` argument (SPEC 4) and
``variables_storage()`` for code written against the original API."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
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
