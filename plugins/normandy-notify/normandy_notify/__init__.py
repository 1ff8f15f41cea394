"""normandy-notify: Normandy's notifications (``confs.notify``, SPEC 18), delivered through
Normandy's hooks.

- :mod:`.plugin` — the hook implementations: a :class:`~._notifier.Notifier` per run;
- :mod:`._settings` — ``confs.notify`` read into :class:`~._settings.Notification` s;
- :mod:`._message` — what is told: the JSON of a run, and its email;
- :mod:`._deliver` — webhook, email, command: each attempt bounded by a deadline;
- :mod:`._notifier` — when to tell, retries, and waiting no longer than the timeout.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
