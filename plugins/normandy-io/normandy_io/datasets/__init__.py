"""normandy-io's dataset types (``confs.datasets``, SPEC 16), registered through the
entry-point group ``normandy.datasets`` of this distribution:

- ``csv``, ``parquet``, ``excel`` — pandas DataFrames as files (:mod:`.tables`);
- ``json``, ``yaml``, ``text``, ``pickle`` — Python values as files (:mod:`.values`);
- ``sql_table``, ``sql_query`` — a table or a query's result (:mod:`.sql`);
- ``matplotlib``, ``plotly`` — figures (:mod:`.charts`).

Each is a few lines over the library that reads its format, with ``load_args`` and
``save_args`` passed through to it. These modules import their libraries only inside
``read``/``write``: listing and validating a project imports no pandas.
"""

from __future__ import annotations

from typing import Any


def expect(dataset: Any, data: Any, kinds: tuple[type, ...], what: str) -> Any:
    """``data``, if it is one of ``kinds``; else a ``TypeError`` saying what the dataset
    saves and what it was given."""
    if not isinstance(data, kinds):
        raise TypeError(
            f"the dataset {dataset.name!r} ({dataset.config.type}) saves {what}, not "
            f"{type(data).__module__}.{type(data).__qualname__}"
        )
    return data
