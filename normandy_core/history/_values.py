"""How values are written into the history's text columns."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

_local = threading.local()


def dump_params(value: Any) -> str:
    """Params as YAML: dates and the other YAML scalars come back as they were."""
    from ruamel.yaml import YAML

    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(value, out)
    return out.getvalue()


def load_params(text: str) -> Any:
    if text.strip() in ("", "{}"):  # most runs: no --param (a list of 1,000 runs reads fast)
        return {}
    loader = getattr(_local, "loader", None)
    if loader is None:  # making one looks for plug-ins on disk: once per thread
        from ruamel.yaml import YAML

        loader = _local.loader = YAML(typ="safe", pure=True)
    return loader.load(text) or {}


def dump_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)
