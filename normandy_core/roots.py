"""Where a project is: its configuration file, and the folder that holds it.

Light on purpose (no configuration, plugin or YAML machinery): the commands that only
read a project's runs (``runs``, ``gc``, ``report``, ``ui``) find it without importing
what reading the project needs."""

from __future__ import annotations

from pathlib import Path

from normandy_core.errors import ProjectNotFoundError

CONF_FILE = Path("pipeline") / "pipeline_conf.yml"
"""A project's configuration, relative to its root."""


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder, from ``start`` (default: the current folder) upward, that holds
    ``pipeline/pipeline_conf.yml``."""
    here = (start or Path.cwd()).resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        if (folder / CONF_FILE).is_file():
            return folder
    raise ProjectNotFoundError(
        f"no {CONF_FILE} in {here} or any folder above it; run the command inside a project, "
        "pass --project DIR, or create one with `normandy create-project PATH`"
    )
