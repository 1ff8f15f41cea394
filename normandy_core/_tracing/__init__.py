"""Recording what a task does while it runs (SPEC 13), in the process that runs it.

- :mod:`._hooks` — the process's hooks: audit events (files, folders, programs), imports,
  ``os.environ``; what each module read while it was imported;
- :mod:`._environ` — ``os.environ``'s class, noting the variables read;
- :mod:`._params` — ``params`` as a dict that notes the keys read;
- :mod:`._places` — the standard library, installed libraries, the project;
- :mod:`._task` — one task's :class:`Recording` and the :class:`TaskTrace` it gives.
"""

from __future__ import annotations

from normandy_core._tracing._hooks import in_fork_server, install
from normandy_core._tracing._params import Params
from normandy_core._tracing._task import (
    Recording,
    TaskTrace,
    TraceSetup,
    environ_listing,
    file_stamp,
    parse_stamp,
)

__all__ = [
    "Params",
    "Recording",
    "TaskTrace",
    "TraceSetup",
    "environ_listing",
    "file_stamp",
    "in_fork_server",
    "install",
    "parse_stamp",
]
