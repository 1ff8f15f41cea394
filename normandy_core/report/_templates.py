"""The Jinja2 environment that draws every page of runs: the report's (one self-contained
file) and the web app's (:mod:`normandy_core.web`). Autoescaping is on for everything:
a task name, a param or a log line is shown, never interpreted.

Jinja2 is imported here, lazily, the first time a page is drawn: commands that draw no
page (``--version``, ``list``, ``run``) never pay for it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from normandy_core import __version__
from normandy_core.units import format_size

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).with_name("templates")
"""The report's templates: the base page, the report, and the partials (a task, the
timeline, the flows) that the web app shares."""


def fmt_secs(value: float | None) -> str:
    """``7ms``, ``0.42s``, ``12.3s``, ``4m05s``, ``1h02m``; ``-`` for none."""
    if value is None:
        return "-"
    if value < 0.1:
        return f"{value * 1000:.0f}ms"
    if value < 10:
        return f"{value:.2f}s"
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(round(value)), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def fmt_time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def status_class(status: str | None) -> str:
    """The CSS class of a status or tally category: ``timed out`` -> ``s-timed-out``."""
    return "s-" + status.replace(" ", "-") if status else ""


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def _size(value: int | None) -> str:
    return "-" if value is None else format_size(value)


@cache
def asset(name: str) -> str:
    """A file shipped beside the templates (``report.css``, ``report.js``)."""
    return resources.files("normandy_core.report").joinpath(name).read_text(encoding="utf-8")


@cache
def _environment(folders: tuple[str, ...]) -> jinja2.Environment:
    import jinja2
    import markupsafe

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([*folders, str(TEMPLATES)]),
        autoescape=True,  # every template: .html and .svg alike
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        secs=fmt_secs,
        time=fmt_time,
        status_class=status_class,
        pretty_json=pretty_json,
        size=_size,
    )
    env.globals.update(
        version=__version__,
        asset=lambda name: markupsafe.Markup(asset(name)),  # our own files, inline
    )
    return env


def environment(folders: Sequence[Path] = ()) -> jinja2.Environment:
    """The shared environment; ``folders`` hold more templates, looked up before the
    report's (the web app's own pages)."""
    return _environment(tuple(str(f) for f in folders))


def render(template: str, /, **context: Any) -> str:
    """The report's template ``template`` drawn with ``context``."""
    return environment().get_template(template).render(**context)
