"""What the runner hands every workload."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from _harness import rounds


@dataclass
class Context:
    quick: bool
    repeats: int
    workdir: Path
    log: Callable[[str], None]
    dask: bool = False
    """Whether the dask executor can run here (``normandy[dask]``): the fan-out and the
    hand-off then also run on a 2-worker Dask ``LocalCluster``, next to ``local``."""

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def alternate(
        self, variants: Mapping[str, Callable[[], None]], repeats: int | None = None
    ) -> None:
        """Run every variant once per repetition, in alternating order (see ``rounds``)."""
        repeats = repeats or self.repeats
        for rep, name in rounds(repeats, list(variants)):
            self.log(f"  [{rep + 1}/{repeats}] {name}")
            variants[name]()

    def folder(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path
