"""A Dask worker preload for the ``LocalCluster`` Normandy starts for a run.

Ctrl-C in a terminal reaches every process of the foreground group, the local cluster's
workers included: they ignore it, and the orchestrator stops them (and their tasks) in
order, as it does the ``local`` executor's pool.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def dask_setup(worker: Any) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
