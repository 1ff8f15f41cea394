"""Running a Normandy project once, and what its run's history says."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _harness import clear_runs, last_run, normandy


@dataclass
class RunTimes:
    wall: float
    """The whole ``normandy run`` command, spawn to exit."""
    run: float
    """The run's own duration in the history: pool start to pool stop, history and logs
    included; interpreter start-up, imports and the configuration's checks not."""
    history: dict[str, Any]

    def span(self) -> float:
        """From the first task's submission to the last task's end (history clocks)."""
        tasks = self.history["tasks"]
        first = min(a["started"] for t in tasks for a in t["attempts_detail"])
        return max(t["ended"] for t in tasks) - first


def run_project(project: Path, *args: str) -> RunTimes:
    proc = normandy("run", "--project", project, *args)
    history = last_run(project)
    if history["status"] != "succeeded":
        raise RuntimeError(f"run in {project} ended {history['status']}")
    clear_runs(project)
    return RunTimes(proc.seconds, history["duration"], history)
