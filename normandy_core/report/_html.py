"""The pieces every page shares: escaping, formats, and the self-contained page shell (its
CSS and JavaScript inline, read from this package; nothing is fetched when it opens)."""

from __future__ import annotations

import html
from datetime import datetime
from functools import cache
from importlib import resources

from normandy_core import __version__


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


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


def status_class(status: str) -> str:
    """The CSS class of a status or tally category: ``timed out`` -> ``s-timed-out``."""
    return "s-" + status.replace(" ", "-")


@cache
def _asset(name: str) -> str:
    return resources.files("normandy_core.report").joinpath(name).read_text(encoding="utf-8")


def page(title: str, body: str, generated: float) -> str:
    """A whole HTML document around ``body``."""
    footer = (
        f"<footer>Made by normandy {esc(__version__)} on {fmt_time(generated)}. "
        "This file is self-contained: it needs no network and no server.</footer>"
    )
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n"
        f"<style>\n{_asset('report.css')}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n{footer}\n</main>\n"
        f"<script>\n{_asset('report.js')}</script>\n</body>\n</html>\n"
    )
