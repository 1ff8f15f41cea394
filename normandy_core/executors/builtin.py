"""Normandy's built-in executors, registered through the same hook as any plugin's."""

from __future__ import annotations

from collections.abc import Mapping

from normandy_core.hookspecs import hookimpl


@hookimpl
def normandy_executors() -> Mapping[str, type]:
    from normandy_core.executors.local import LocalExecutor
    from normandy_core.executors.serial import SerialExecutor

    return {"local": LocalExecutor, "serial": SerialExecutor}
