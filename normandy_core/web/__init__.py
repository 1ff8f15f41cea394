"""``normandy ui``: a local, read-only web app over one project's runs (SPEC 18).

A thin view over the history's typed records and the runs' log folders — the records the
report and ``runs --json`` read — drawn by the report's Jinja2 templates (same base page,
same CSS, same task, timeline and flows partials) plus pages of its own:

- :mod:`._pages` — what each page shows, as plain data (runs, a run compared to another,
  the flows);
- :mod:`._preview` — a stored value previewed in a child process, bounded in size and time
  (the seam where datasets will plug in);
- :mod:`._app` — the Starlette application: routes, HTML and JSON, the live run page's
  server-sent events.

Starlette and uvicorn come with the extra ``normandy[ui]``; nothing here imports them until
:func:`create_app` is called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from normandy_core.errors import UiError

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["EXTRA", "UiError", "create_app", "require"]

EXTRA = "pip install 'normandy[ui]'"
"""How to install what ``normandy ui`` needs."""


def require() -> None:
    """:class:`UiError` saying how to install them, where Starlette or uvicorn is missing."""
    import importlib.util

    # found, not imported: the server imports what it needs when it needs it
    missing = [m for m in ("starlette", "uvicorn", "jinja2") if importlib.util.find_spec(m) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise UiError(
            f"normandy ui needs {' and '.join(missing)}, which {verb} not installed: {EXTRA}"
        )


def create_app(
    root: Path, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"), poll: float = 1.0
) -> Starlette:
    """The web app of the project at ``root``, answering requests for ``hosts`` only (``*``:
    any); a live page checks its run every ``poll`` seconds."""
    require()
    from normandy_core.web._app import build

    return build(root, hosts=hosts, poll=poll)
