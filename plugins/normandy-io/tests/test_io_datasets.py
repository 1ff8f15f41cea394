"""normandy-io's dataset types against real files — on the local disk and behind fsspec
(``memory://``) — and a real SQLite database: each format round-trips through its library,
``load_args`` and ``save_args`` reach it, wrong data is refused before a file is touched."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from normandy_io.datasets.charts import MatplotlibDataset, PlotlyDataset
from normandy_io.datasets.sql import SQLQueryDataset, SQLTableDataset
from normandy_io.datasets.tables import CSVDataset, ExcelDataset, ParquetDataset
from normandy_io.datasets.values import JSONDataset, PickleDataset, TextDataset, YAMLDataset

from normandy_core.datasets import Dataset, DatasetConfig

FRAME = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"], "price": [1.5, 2.0, None]})


@pytest.fixture(params=["local", "memory"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A folder: on the local disk, or in fsspec's memory file system."""
    if request.param == "local":
        yield str(tmp_path)
        return
    fsspec = pytest.importorskip("fsspec")
    root = f"/io-{os.getpid()}-{id(request)}"
    yield f"memory://{root}"
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def make(cls: type[Dataset], path: str | None, root: str = ".", **keys: Any) -> Any:
    options = {k: v for k, v in keys.items() if k not in ("load_args", "save_args")}
    config = DatasetConfig(
        name="d",
        type=cls.__name__,
        path=path,
        load_args=keys.get("load_args", {}),
        save_args=keys.get("save_args", {}),
        options=options,
        root=root,
    )
    assert cls.check(config) == []
    return cls(config)


def round_trip(dataset: Dataset, data: Any) -> Any:
    dataset.save(data)
    stamp = dataset.stamp()
    assert stamp is not None and stamp.size
    return dataset.load()


def test_csv_with_its_arguments_passed_through(where: str) -> None:
    csv = make(CSVDataset, f"{where}/raw/x.csv", save_args={"sep": ";"}, load_args={"sep": ";"})
    pd.testing.assert_frame_equal(round_trip(csv, FRAME), FRAME)
    files, path = csv.files
    with files.open(path, "rb") as handle:
        assert handle.read().decode().splitlines()[0] == "id;name;price"  # no index, sep ;
    with pytest.raises(TypeError, match=r"saves a pandas DataFrame or Series, not builtins.list"):
        csv.save([1, 2])
    pd.testing.assert_frame_equal(csv.load(), FRAME)  # the refused save left the file


def test_parquet_of_a_dataframe_and_of_an_arrow_table(where: str) -> None:
    import pyarrow as pa

    parquet = make(ParquetDataset, f"{where}/x.parquet", load_args={"columns": ["id", "name"]})
    pd.testing.assert_frame_equal(round_trip(parquet, FRAME), FRAME[["id", "name"]])
    table = pa.table({"id": [7, 8]})
    assert round_trip(make(ParquetDataset, f"{where}/t.parquet"), table)["id"].tolist() == [7, 8]


def test_excel_one_sheet_or_several(where: str) -> None:
    pytest.importorskip("openpyxl")
    excel = make(ExcelDataset, f"{where}/x.xlsx")
    pd.testing.assert_frame_equal(round_trip(excel, FRAME), FRAME)
    sheets = make(ExcelDataset, f"{where}/s.xlsx", load_args={"sheet_name": None})
    got = round_trip(sheets, {"first": FRAME, "second": FRAME.head(1)})
    assert list(got) == ["first", "second"] and len(got["second"]) == 1


def test_json_yaml_text_and_pickle(where: str) -> None:
    value = {"name": "Zoë", "values": [1, 2.5, None], "nested": {"ok": True}}
    jsonset = make(JSONDataset, f"{where}/v.json", save_args={"sort_keys": True})
    assert round_trip(jsonset, value) == value
    files, path = jsonset.files
    with files.open(path, "rb") as handle:
        written = handle.read().decode("utf-8")
    assert json.loads(written) == value and '"name": "Zoë"' in written  # indent 2, UTF-8
    assert written.index('"name"') < written.index('"nested"')  # sort_keys reached json.dumps
    assert round_trip(make(YAMLDataset, f"{where}/v.yml"), value) == value
    text = make(TextDataset, f"{where}/v.txt", save_args={"encoding": "latin-1"},
                load_args={"encoding": "latin-1"})
    assert round_trip(text, "café\n") == "café\n"
    with pytest.raises(TypeError, match="saves a string"):
        text.save(b"bytes")
    assert round_trip(make(PickleDataset, f"{where}/v.pkl"), FRAME).equals(FRAME)
    bad = DatasetConfig(name="d", type="pickle", path="x", options={"backend": "marshal"})
    assert PickleDataset.check(bad) == [
        ("backend", "must be one of pickle, joblib, cloudpickle, dill")
    ]


def test_a_matplotlib_figure_written_in_the_format_of_its_suffix(where: str) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([1, 2, 3])
    png = make(MatplotlibDataset, f"{where}/chart.png", save_args={"dpi": 50})
    png.save(figure)
    files, path = png.files
    with files.open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not plt.get_fignums()  # closed once written
    figure, _ = plt.subplots()
    svg = make(MatplotlibDataset, f"{where}/chart.svg")
    svg.save(figure)
    files, path = svg.files
    with files.open(path, "rb") as handle:
        assert b"<svg" in handle.read()
    assert not MatplotlibDataset.loads  # a task reading one is refused before running


def test_a_plotly_figure_as_json_read_back_or_as_a_page(where: str) -> None:
    pytest.importorskip("plotly")
    import plotly.graph_objects as go

    figure = go.Figure(go.Bar(x=["a", "b"], y=[1, 3]))
    got = round_trip(make(PlotlyDataset, f"{where}/fig.json"), figure)
    assert isinstance(got, go.Figure) and list(got.data[0].y) == [1, 3]
    page = make(PlotlyDataset, f"{where}/fig.html", save_args={"include_plotlyjs": False})
    page.save(figure)
    files, path = page.files
    with files.open(path, "rb") as handle:
        assert b"<div" in handle.read()
    with pytest.raises(TypeError, match="HTML page: it is written, not read"):
        page.load()


def test_a_sqlite_table_and_a_query(tmp_path: Path) -> None:
    url = "sqlite:///db/warehouse.db"  # relative to the project root
    table = make(SQLTableDataset, None, str(tmp_path), url=url, table="sales")
    assert table.stamp() is None  # no database yet
    pd.testing.assert_frame_equal(round_trip(table, FRAME), FRAME)
    database = tmp_path / "db" / "warehouse.db"
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM sales").fetchone() == (3,)
    table.save(FRAME.head(1))  # replaced, in one transaction
    assert len(table.load()) == 1
    assert "table sales" in table.describe() and "warehouse.db" in table.describe()
    other = make(SQLTableDataset, None, str(tmp_path), url=url, table="missing")
    assert other.stamp() is None  # the database is there, the table is not

    creds = DatasetConfig(  # the database from the env's credentials
        name="q",
        type="sql_query",
        credentials={"url": f"sqlite:///{database}"},
        options={"query": "SELECT id, name FROM sales WHERE id >= :low"},
        load_args={"params": {"low": 1}},
        root=str(tmp_path),
    )
    assert SQLQueryDataset.check(creds) == []
    got = SQLQueryDataset(creds).load()
    assert got.to_dict("records") == [{"id": 1, "name": "a"}]
    assert not SQLQueryDataset.saves


def test_sql_declarations_are_checked() -> None:
    empty = DatasetConfig(name="t", type="sql_table")
    assert SQLTableDataset.check(empty) == [
        (
            "url",
            "missing the database: give a SQLAlchemy URL (url: sqlite:///data/out.db) or "
            "credentials: NAME (an entry of the env's credentials holding the URL)",
        ),
        ("table", "missing required key 'table' (the table's name)"),
    ]
    named = DatasetConfig(name="q", type="sql_query", credentials="warehouse")
    assert SQLQueryDataset.check(named) == [
        ("query", "missing required key 'query' (the SELECT to run)")
    ]
