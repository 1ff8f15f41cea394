"""Telling a run's observers what happens, in order (see :mod:`normandy_core.events`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from normandy_core.events import RunObserver


class EventBus:
    """Calls each event on every observer, in the order given.

    Normandy's own observers (the history, the log files, the hooks) are trusted: an error
    of theirs is an error of the run. A *guest* (a display, an observer passed by an
    embedding program) that raises is reported through ``report`` and not called again:
    the run goes on.
    """

    def __init__(
        self,
        observers: Iterable[RunObserver],
        guests: Iterable[RunObserver] = (),
        report: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.observers = list(observers)
        self.guests = {id(guest) for guest in guests}
        self.report = report

    def emit(self, event: str, *args: Any) -> None:
        """Call ``event`` (a :class:`RunObserver` method) with ``args`` on every observer."""
        for observer in list(self.observers):
            try:
                getattr(observer, event)(*args)
            except Exception as exc:
                if id(observer) not in self.guests:
                    raise
                self.observers.remove(observer)
                if self.report is not None:
                    self.report(
                        f"the run observer {type(observer).__qualname__} failed in {event} "
                        "and is no longer called",
                        exc,
                    )
