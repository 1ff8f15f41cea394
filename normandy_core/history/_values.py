"""How values are written into the history's text columns."""

from __future__ import annotations

import io
import json
from typing import Any


def dump_params(value: Any) -> str:
    """Params as YAML: dates and the other YAML scalars come back as they were."""
    from ruamel.yaml import YAML

    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(value, out)
    return out.getvalue()


def load_params(text: str) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(text) or {}


def dump_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)
