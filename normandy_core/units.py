"""Quantities as people read them, for every place Normandy shows them."""

from __future__ import annotations

import time


def format_size(size: int | None) -> str:
    """A size in bytes: ``812 B``, ``3.4 KiB``, ``12.0 MiB``, ``1.2 GiB``; ``-`` for none."""
    if size is None:
        return "-"
    value = float(size)
    unit = "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


class TimeOfDay:
    """``HH:MM:SS`` of a time (seconds since the epoch, local time), made once a second
    and not once a line: the log files and the plain console write a line per event."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self, when: float) -> str:
        second = int(when)
        if second != self._second:
            self._second, self._text = second, time.strftime("%H:%M:%S", time.localtime(when))
        return self._text
