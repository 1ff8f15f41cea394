"""The plugin that offers the ``dask`` executor, loaded through the entry-point group
``normandy.plugins`` of Normandy's own distribution, like any third party's engine.

Importing it needs no Dask, and costs nothing to commands that list no executor
(``normandy list``): the executor is imported when the hook is called, checks for its
extra when it is chosen (:meth:`DaskExecutor.unavailable`), and imports Dask only when a
run starts.
"""

from __future__ import annotations

from collections.abc import Mapping

from normandy_core.hookspecs import hookimpl


@hookimpl
def normandy_executors() -> Mapping[str, type]:
    from normandy_core.executors.dask.executor import DaskExecutor

    return {"dask": DaskExecutor}
