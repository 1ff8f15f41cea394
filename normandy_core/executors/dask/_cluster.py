"""Reaching a Dask cluster from the orchestrator: an existing scheduler, or a
``LocalCluster`` started for the run."""

from __future__ import annotations

import logging
from typing import Any

from normandy_core.errors import ExecutorError

LOCAL_CLUSTER_CONFIG = {
    # A worker lost while running a task fails that task (the orchestrator reports it as
    # crashed, and its retries apply) instead of Dask silently running it again elsewhere.
    "distributed.scheduler.allowed-failures": 0,
    # Workers may have child processes (they run each attempt in one; see _remote).
    "distributed.worker.daemon": False,
}


def connect(address: str | None, workers: int) -> tuple[Any, Any, str]:
    """``(client, cluster or None, description)``: connected to ``address``, or to a
    ``LocalCluster`` of ``workers`` single-threaded worker processes started here."""
    if address:
        return _connect(address)
    return _local_cluster(workers)


def _connect(address: str) -> tuple[Any, Any, str]:
    from distributed import Client

    try:
        # timeout: dask's distributed.comm.timeouts.connect (DASK_* variables, ~/.config/dask)
        client = Client(address, set_as_default=False)
    except Exception as exc:
        raise ExecutorError(
            f"cannot reach the dask scheduler at {address}: {type(exc).__name__}: {exc}; "
            f"check --address or confs.dask.address, and that `dask scheduler` runs there "
            f"(workers join it with `dask worker {address}`)"
        ) from None
    try:
        info = client.scheduler_info(n_workers=-1)
        workers = info.get("workers", {})
        threads = sum(int(w.get("nthreads", 0)) for w in workers.values())
    except Exception:  # only for the description
        workers, threads = {}, 0
    if workers:
        what = f"{len(workers)} worker{'s' * (len(workers) != 1)}, {threads} threads"
    else:
        what = "no worker yet: tasks wait until one joins"
    return client, None, f"the cluster at {address} ({what})"


def local_cluster(workers: int) -> Any:
    """A ``LocalCluster`` of ``workers`` single-threaded worker processes on loopback,
    configured for Normandy (:data:`LOCAL_CLUSTER_CONFIG`), without a dashboard."""
    import dask
    from distributed import LocalCluster

    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # no dashboard, and its HTTP server on a free port rather than 8787 (taken by
            # any other cluster on the machine, with a warning)
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.CRITICAL,  # a lost worker is reported with its task
            preload=["normandy_core.executors.dask._preload"],
        )


def _local_cluster(workers: int) -> tuple[Any, Any, str]:
    from distributed import Client

    try:
        cluster = local_cluster(workers)
    except Exception as exc:
        raise ExecutorError(
            f"cannot start a local dask cluster of {workers} workers: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    client = Client(cluster, set_as_default=False)
    what = f"{workers} worker{'s' * (workers != 1)}"
    return client, cluster, f"a local cluster of {what} at {cluster.scheduler_address}"
