"""pandas DataFrames as files: ``csv``, ``parquet``, ``excel`` (through pandas, with
pyarrow and openpyxl underneath)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from normandy_core.datasets import FileDataset
from normandy_io.datasets import expect


def _frames() -> tuple[type, ...]:
    import pandas as pd

    return (pd.DataFrame, pd.Series)


class CSVDataset(FileDataset):
    """``type: csv`` — ``pandas.read_csv(file, **load_args)``;
    ``DataFrame.to_csv(file, index=False, **save_args)``."""

    def read(self, file: IO[bytes]) -> Any:
        import pandas as pd

        return pd.read_csv(file, **self.load_args)

    def write(self, data: Any, file: IO[bytes]) -> None:
        frame = expect(self, data, _frames(), "a pandas DataFrame or Series")
        frame.to_csv(file, **{"index": False, **self.save_args})


class ParquetDataset(FileDataset):
    """``type: parquet`` — ``pandas.read_parquet(file, **load_args)`` (pyarrow);
    ``DataFrame.to_parquet(file, **save_args)``, or ``pyarrow.parquet.write_table`` for
    an Arrow table."""

    def read(self, file: IO[bytes]) -> Any:
        import pandas as pd

        return pd.read_parquet(file, **self.load_args)

    def write(self, data: Any, file: IO[bytes]) -> None:
        import pandas as pd
        import pyarrow as pa

        if isinstance(data, pa.Table):
            import pyarrow.parquet as pq

            pq.write_table(data, file, **self.save_args)
            return
        expect(self, data, (pd.DataFrame,), "a pandas DataFrame or a pyarrow Table")
        data.to_parquet(file, **self.save_args)


class ExcelDataset(FileDataset):
    """``type: excel`` — ``pandas.read_excel(file, **load_args)`` (``sheet_name: null``
    gives every sheet, as a mapping); ``DataFrame.to_excel(file, index=False,
    **save_args)``, or a mapping of sheet name to DataFrame, one sheet each. Needs
    openpyxl (``pip install 'normandy-io[excel]'``)."""

    def read(self, file: IO[bytes]) -> Any:
        import pandas as pd

        return pd.read_excel(file, **self.load_args)

    def write(self, data: Any, file: IO[bytes]) -> None:
        import pandas as pd

        options = {"index": False, **self.save_args}
        if isinstance(data, Mapping):
            with pd.ExcelWriter(file) as writer:
                for sheet, frame in data.items():
                    expect(self, frame, _frames(), "DataFrames (a mapping: sheet -> DataFrame)")
                    frame.to_excel(writer, sheet_name=str(sheet), **options)
            return
        expect(self, data, _frames(), "a pandas DataFrame, or a mapping of them by sheet")
        data.to_excel(file, **options)
