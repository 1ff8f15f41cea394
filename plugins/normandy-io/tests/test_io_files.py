"""``io.read_csv``, ``io.write_csv``, ``io.read_parquet``, ``io.write_parquet`` on real files."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from normandy_io import ParamError
from normandy_io.files import atomic_path, read_csv, read_parquet, write_csv, write_parquet


def test_read_csv_relative_to_the_project(make_pipe, log, project, caplog):
    (project / "data").mkdir()
    (project / "data" / "users.csv").write_text("id,name\n1,ann\n2,bob\n3,cy\n")
    pipe = make_pipe({"path": "data/users.csv", "var": "users"})
    with caplog.at_level("INFO"):
        read_csv(pipe, log, pipe.params)
    frame = pipe.vars["users"]
    assert list(frame["name"]) == ["ann", "bob", "cy"]
    assert "read 3 rows x 2 columns from data/users.csv into 'users'" in caplog.text


def test_read_csv_with_options_and_a_confs_placeholder(make_pipe, log, project):
    (project / "raw").mkdir()
    (project / "raw" / "x.csv").write_text("a;b\n1;2\n3;4\n")
    params = {"path": "{confs.read}/x.csv", "var": "x", "options": {"sep": ";", "usecols": ["b"]}}
    pipe = make_pipe(params, confs={"read": "raw"})
    read_csv(pipe, log, pipe.params)
    assert pipe.vars["x"].to_dict("list") == {"b": [2, 4]}


def test_read_csv_absolute_path(make_pipe, log, tmp_path):
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("v\n7\n")
    pipe = make_pipe({"path": str(outside), "var": "v"})
    read_csv(pipe, log, pipe.params)
    assert pipe.vars["v"]["v"].tolist() == [7]


def test_write_csv_creates_folders_and_omits_the_index(make_pipe, log, project):
    pipe = make_pipe({"var": "df", "path": "out/deep/result.csv"})
    pipe.vars["df"] = pd.DataFrame({"id": [1, 2], "v": ["a", "b"]}, index=[10, 20])
    write_csv(pipe, log, pipe.params)
    target = project / "out" / "deep" / "result.csv"
    assert target.read_text() == "id,v\n1,a\n2,b\n"
    assert os.listdir(target.parent) == ["result.csv"]  # no temporary file left


def test_write_csv_keeps_the_compression_of_the_name(make_pipe, log, project):
    pipe = make_pipe({"var": "df", "path": "out.csv.gz"})
    pipe.vars["df"] = pd.DataFrame({"id": range(100)})
    write_csv(pipe, log, pipe.params)
    assert (project / "out.csv.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert pd.read_csv(project / "out.csv.gz")["id"].sum() == sum(range(100))


def test_a_failed_write_leaves_the_previous_file(make_pipe, log, project):
    target = project / "keep.csv"
    target.write_text("old\n")
    pipe = make_pipe({"var": "df", "path": "keep.csv", "options": {"encoding": "no-such-codec"}})
    pipe.vars["df"] = pd.DataFrame({"a": [1]})
    with pytest.raises(LookupError):
        write_csv(pipe, log, pipe.params)
    assert target.read_text() == "old\n"
    assert os.listdir(project) == ["keep.csv"]


def test_atomic_path_replaces_only_at_the_end(tmp_path):
    target = tmp_path / "a" / "f.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert not target.exists()
        assert tmp.parent == target.parent and tmp.name.endswith("-f.txt")
    assert target.read_text() == "new"


def test_parquet_round_trip(make_pipe, log, project):
    frame = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5], "s": ["a", "b", "c"]})
    pipe = make_pipe({"var": "df", "path": "out/t.parquet", "options": {"compression": "zstd"}})
    pipe.vars["df"] = frame
    write_parquet(pipe, log, pipe.params)
    path = project / "out" / "t.parquet"
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"

    reader = make_pipe({"var": "back", "path": "out/t.parquet", "options": {"columns": ["id"]}})
    read_parquet(reader, log, reader.params)
    assert reader.vars["back"]["id"].tolist() == [1, 2, 3]
    assert list(reader.vars["back"].columns) == ["id"]


def test_write_parquet_from_an_arrow_table(make_pipe, log, project):
    pipe = make_pipe({"var": "t", "path": "t.parquet"})
    pipe.vars["t"] = pa.table({"n": [1, 2]})
    write_parquet(pipe, log, pipe.params)
    assert pq.read_table(project / "t.parquet").num_rows == 2


@pytest.mark.parametrize(
    ("process", "params", "message"),
    [
        (
            read_csv,
            {"var": "x"},
            "io.read_csv: params.path is required (the CSV file, relative to the project root)",
        ),
        (
            read_csv,
            {"path": "a.csv"},
            "io.read_csv: params.var is required (the name of the variable to store",
        ),
        (read_csv, {"path": "a.csv", "var": "a/b"}, "io.read_csv: params.var is not a valid"),
        (read_csv, {"path": 3, "var": "x"}, "io.read_csv: params.path must be a non-empty string"),
        (
            read_csv,
            {"path": "a.csv", "var": "x", "options": {"sepp": ";"}},
            "io.read_csv: params.options has options that read_csv does not take: sepp",
        ),
        (
            read_csv,
            {"path": "a.csv", "var": "x", "options": {"filepath_or_buffer": "b"}},
            "io.read_csv: params.options cannot set 'filepath_or_buffer'",
        ),
        (
            read_parquet,
            {"path": "a.parquet", "var": "x", "options": ["columns"]},
            "io.read_parquet: params.options must be a mapping",
        ),
        (write_csv, {"var": "df"}, "io.write_csv: params.path is required"),
        (write_parquet, {"path": "x.parquet"}, "io.write_parquet: params.var is required"),
        (
            write_csv,
            {"var": "nope", "path": "x.csv"},
            "io.write_csv: params.var names no variable of this flow: 'nope' (known: none)",
        ),
        (
            read_csv,
            {"path": "{confs.read}/a.csv", "var": "x"},
            "io.read_csv: params.path refers to {confs.read}, but confs.envs.dev is empty",
        ),
        (
            read_csv,
            {"path": "{credentials.pw}/a.csv", "var": "x"},
            "io.read_csv: params.path cannot use {credentials.pw}",
        ),
    ],
)
def test_invalid_params(make_pipe, log, process, params, message):
    pipe = make_pipe(params)
    with pytest.raises(ParamError) as info:
        process(pipe, log, pipe.params)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)


def test_a_variable_of_the_wrong_type(make_pipe, log):
    pipe = make_pipe({"var": "rows", "path": "x.parquet"})
    pipe.vars["rows"] = [1, 2]
    with pytest.raises(ValueError, match=r"params.var names 'rows', which holds a list, not a "):
        write_parquet(pipe, log, pipe.params)


def test_a_missing_file_names_the_resolved_path(make_pipe, log, project):
    pipe = make_pipe({"path": "data/none.csv", "var": "x"})
    with pytest.raises(FileNotFoundError) as info:
        read_csv(pipe, log, pipe.params)
    assert str(info.value) == (
        f"io.read_csv: no file {project / 'data' / 'none.csv'} (params.path 'data/none.csv', "
        f"relative to the project root {project})"
    )


def test_writing_over_a_folder_is_refused(make_pipe, log, project):
    (project / "out").mkdir()
    pipe = make_pipe({"var": "df", "path": "out"})
    pipe.vars["df"] = pd.DataFrame({"a": [1]})
    with pytest.raises(ValueError, match="params.path is a folder"):
        write_csv(pipe, log, pipe.params)
