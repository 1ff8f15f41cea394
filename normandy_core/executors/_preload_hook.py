"""The fork server's last preload: where ``normandy run`` made a socket for it, ask there
which of the run's process modules to import, and import them before serving any worker
(see :mod:`normandy_core.executors._preload`). Imported anywhere else, it does nothing."""

from __future__ import annotations

import os

from normandy_core.executors._preload import SOCKET, serve

_path = os.environ.pop(SOCKET, "")  # the workers forked later must not ask again
if _path:
    serve(_path)
