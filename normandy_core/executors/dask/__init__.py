"""The ``dask`` executor: the same flows on a Dask cluster (``pip install 'normandy[dask]'``).

Normandy does not schedule across machines itself: it hands each attempt of a task to
Dask (``distributed``), on the cluster at ``--address``/``confs.dask.address`` or on a
``LocalCluster`` started for the run. The pieces, by where they run:

- :mod:`.plugin` — registers the engine through ``normandy_executors``, from an entry point
  of Normandy's own distribution (the path any third-party engine takes). Imports nothing
  of Dask.
- :mod:`.executor` and :mod:`._cluster` — in the orchestrator: connect or start the
  cluster, submit each attempt by name, turn what comes back into the futures the
  orchestrator expects (a result, :class:`~normandy_core.executors.WorkerCrashed`,
  :class:`~normandy_core.executors.TaskTimedOut`).
- :mod:`._remote` — in each Dask worker: runs each attempt in a child process taken from a
  small pool of that run (the ``local`` executor's pool, one per run and worker), so that a
  timeout, a crash or Ctrl-C kills that child only and the Dask worker lives on; forwards
  the child's log records to the orchestrator as Dask events.
- :mod:`._child` — in those child processes.
- :mod:`._protocol` — what travels between them.

Why each choice was made is written where it is made. Nothing is imported here: the
plugin module must stay cheap to import.
"""
