"""Importing the run's process modules once, in the fork server, for every worker
(``confs.preload``, ``NORMANDY_PRELOAD``): the settings, and the words the run's log
gets for what a server imported.

What can go wrong, and what happens:

- a module that fails to import is noted in the log and is not there: the worker of a
  task that uses it imports it and fails that task with the import's real traceback;
- a module still importing after :func:`budget` seconds, while work waits for a worker:
  the workers are forked from a new server from then on, and import it themselves (the
  import is never cut short inside the server: a half-imported package is never handed
  to a worker);
- what a module prints when imported goes to the run's log, never to ``normandy``'s own
  output;
- a module that starts threads when imported leaves them in the server only (a fork
  copies the calling thread alone): the log says so, with how to turn preloading off.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

OPT_OUT = "NORMANDY_PRELOAD"
"""Set to ``0`` (or ``false``, ``no``, ``off``), ``normandy run`` preloads nothing."""

BUDGET = 60.0
"""Seconds an import in the fork server may hold back the workers
(``NORMANDY_PRELOAD_BUDGET`` to change it)."""


_SHOWN = 12
"""Modules named in the log's line about what a server imported; the others counted."""


def disabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the user turned preloading off (``NORMANDY_PRELOAD=0``)."""
    value = (environ if environ is not None else os.environ).get(OPT_OUT, "")
    return value.strip().lower() in ("0", "false", "no", "off")


def budget() -> float:
    try:
        return max(0.001, float(os.environ.get("NORMANDY_PRELOAD_BUDGET", BUDGET)))
    except ValueError:
        return BUDGET


def describe(reply: dict[str, Any], where: str = "the fork server") -> list[tuple[bool, str]]:
    """The lines a run's log gets for a fork server's report: ``(is_warning, text)``."""
    lines: list[tuple[bool, str]] = []
    if "error" in reply:
        lines.append((False, f"preloading: {reply['error']}; each worker imports for itself"))
        return lines
    imported = reply.get("imported", {})
    if imported:
        names = ", ".join(list(imported)[:_SHOWN])
        if len(imported) > _SHOWN:  # learned ones are many: sklearn's submodules…
            names += f" and {len(imported) - _SHOWN} more"
        lines.append(
            (
                False,
                f"preloaded {len(imported)} module{'s' * (len(imported) != 1)} in {where} in "
                f"{reply.get('seconds', 0):.2f} s (workers start with them): {names}",
            )
        )
    for name, error in reply.get("failed", {}).items():
        lines.append(
            (
                False,
                f"could not preload {name} ({error}): the tasks using it import it in their worker",
            )
        )
    output = reply.get("output", "").strip()
    if output:
        lines.append((False, f"output of the preloaded modules:\n{output}"))
    threads = reply.get("threads", [])
    if threads:
        lines.append(
            (
                True,
                f"preloading started threads in {where} ({', '.join(threads)}); the "
                f"workers forked from it do not have them. If a process needs them, turn "
                f"preloading off: confs.preload: false, or NORMANDY_PRELOAD=0",
            )
        )
    return lines


def put_line(log_queue: Any, level: int, text: str, warning: bool) -> None:
    """A line of the engine's for the run's log (at the run's ``level``)."""
    levelno = logging.WARNING if warning else logging.INFO
    if levelno < level:
        return
    record = logging.LogRecord("normandy.preload", levelno, "", 0, text, None, None)
    record.flow, record.key, record.event = None, None, not warning
    try:
        log_queue.put(record)
    except Exception:  # noqa: BLE001 - the run's end closed the queue: not worth more
        return
