"""normandy-io: general Normandy processes configured by params.

Registered through the ``normandy.processes`` entry points of this distribution:

- ``io.read_csv``, ``io.write_csv``: CSV files <-> pandas DataFrames (:mod:`normandy_io.files`)
- ``io.read_parquet``, ``io.write_parquet``: Parquet files, pyarrow engine
- ``io.sql_query``: a query's result into a DataFrame (:mod:`normandy_io.sql`)
- ``io.sql_load``: a DataFrame into a table
- ``io.sql_execute``: DDL/DML statements in one transaction
- ``io.shell``: a command, output logged, killed with its process group on timeout
  (:mod:`normandy_io.shell`)

Paths are relative to the project root; ``{confs.KEY}`` fills in a setting of the active
environment and, in ``url`` and ``env``, ``{credentials.KEY}`` a value of its credentials.
Listing the processes does not import this package; each process module is imported by the
worker that runs it.
"""

from __future__ import annotations

from normandy_io._params import ParamError

__version__ = "0.1.0"

__all__ = ["ParamError", "__version__"]
