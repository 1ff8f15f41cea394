"""``io.read_csv``, ``io.write_csv``, ``io.read_parquet``, ``io.write_parquet`` on real files,
each run with ``run_process`` as a task of a run runs it: ``project`` is the folder the
process sees as ``pipe.path``, ``inputs`` the variables of earlier steps."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from normandy_io import ParamError
from normandy_io.files import atomic_path


def test_read_csv_relative_to_the_project(run_process, project):
    (project / "data").mkdir()
    (project / "data" / "users.csv").write_text("id,name\n1,ann\n2,bob\n3,cy\n")
    result = run_process(
        "io.read_csv", params={"path": "data/users.csv", "var": "users"}, project=project
    )
    assert list(result.outputs["users"]["name"]) == ["ann", "bob", "cy"]
    assert result.messages == ["read 3 rows x 2 columns from data/users.csv into 'users'"]


def test_read_csv_with_options_and_a_confs_placeholder(run_process, project):
    (project / "raw").mkdir()
    (project / "raw" / "x.csv").write_text("a;b\n1;2\n3;4\n")
    params = {"path": "{confs.read}/x.csv", "var": "x", "options": {"sep": ";", "usecols": ["b"]}}
    result = run_process("io.read_csv", params=params, confs={"read": "raw"}, project=project)
    assert result.outputs["x"].to_dict("list") == {"b": [2, 4]}


def test_read_csv_absolute_path(run_process, tmp_path):
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("v\n7\n")
    result = run_process("io.read_csv", params={"path": str(outside), "var": "v"})
    assert result.outputs["v"]["v"].tolist() == [7]


def test_write_csv_creates_folders_and_omits_the_index(run_process, project):
    frame = pd.DataFrame({"id": [1, 2], "v": ["a", "b"]}, index=[10, 20])
    params = {"var": "df", "path": "out/deep/result.csv"}
    run_process("io.write_csv", params=params, inputs={"df": frame}, project=project).check()
    target = project / "out" / "deep" / "result.csv"
    assert target.read_text() == "id,v\n1,a\n2,b\n"
    assert os.listdir(target.parent) == ["result.csv"]  # no temporary file left


def test_write_csv_keeps_the_compression_of_the_name(run_process, project):
    frame = pd.DataFrame({"id": range(100)})
    params = {"var": "df", "path": "out.csv.gz"}
    run_process("io.write_csv", params=params, inputs={"df": frame}, project=project).check()
    assert (project / "out.csv.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert pd.read_csv(project / "out.csv.gz")["id"].sum() == sum(range(100))


def test_a_failed_write_leaves_the_previous_file(run_process, project):
    target = project / "keep.csv"
    target.write_text("old\n")
    params = {"var": "df", "path": "keep.csv", "options": {"encoding": "no-such-codec"}}
    inputs = {"df": pd.DataFrame({"a": [1]})}
    result = run_process("io.write_csv", params=params, inputs=inputs, project=project)
    assert isinstance(result.error, LookupError)
    assert target.read_text() == "old\n"
    assert os.listdir(project) == ["keep.csv"]


def test_atomic_path_replaces_only_at_the_end(tmp_path):
    target = tmp_path / "a" / "f.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert not target.exists()
        assert tmp.parent == target.parent and tmp.name.endswith("-f.txt")
    assert target.read_text() == "new"


def test_parquet_round_trip(run_process, project):
    frame = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5], "s": ["a", "b", "c"]})
    params = {"var": "df", "path": "out/t.parquet", "options": {"compression": "zstd"}}
    run_process("io.write_parquet", params=params, inputs={"df": frame}, project=project).check()
    path = project / "out" / "t.parquet"
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"

    params = {"var": "back", "path": "out/t.parquet", "options": {"columns": ["id"]}}
    back = run_process("io.read_parquet", params=params, project=project).outputs["back"]
    assert back["id"].tolist() == [1, 2, 3]
    assert list(back.columns) == ["id"]


def test_write_parquet_from_an_arrow_table(run_process, project):
    params = {"var": "t", "path": "t.parquet"}
    inputs = {"t": pa.table({"n": [1, 2]})}
    run_process("io.write_parquet", params=params, inputs=inputs, project=project).check()
    assert pq.read_table(project / "t.parquet").num_rows == 2


@pytest.mark.parametrize(
    ("process", "params", "message"),
    [
        (
            "io.read_csv",
            {"var": "x"},
            "io.read_csv: params.path is required (the CSV file, relative to the project root)",
        ),
        (
            "io.read_csv",
            {"path": "a.csv"},
            "io.read_csv: params.var is required (the name of the variable to store",
        ),
        ("io.read_csv", {"path": "a.csv", "var": "a/b"}, "io.read_csv: params.var is not a valid"),
        (
            "io.read_csv",
            {"path": 3, "var": "x"},
            "io.read_csv: params.path must be a non-empty string",
        ),
        (
            "io.read_csv",
            {"path": "a.csv", "var": "x", "options": {"sepp": ";"}},
            "io.read_csv: params.options has options that read_csv does not take: sepp",
        ),
        (
            "io.read_csv",
            {"path": "a.csv", "var": "x", "options": {"filepath_or_buffer": "b"}},
            "io.read_csv: params.options cannot set 'filepath_or_buffer'",
        ),
        (
            "io.read_parquet",
            {"path": "a.parquet", "var": "x", "options": ["columns"]},
            "io.read_parquet: params.options must be a mapping",
        ),
        ("io.write_csv", {"var": "df"}, "io.write_csv: params.path is required"),
        ("io.write_parquet", {"path": "x.parquet"}, "io.write_parquet: params.var is required"),
        (
            "io.write_csv",
            {"var": "nope", "path": "x.csv"},
            "io.write_csv: params.var names no variable of this flow: 'nope' (known: none)",
        ),
        (
            "io.read_csv",
            {"path": "{confs.read}/a.csv", "var": "x"},
            "io.read_csv: params.path refers to {confs.read}, but confs.envs.dev is empty",
        ),
        (
            "io.read_csv",
            {"path": "{credentials.pw}/a.csv", "var": "x"},
            "io.read_csv: params.path cannot use {credentials.pw}",
        ),
    ],
)
def test_invalid_params(run_process, process, params, message):
    result = run_process(process, params=params, env="dev")
    assert isinstance(result.error, ParamError) and isinstance(result.error, ValueError)
    assert str(result.error).startswith(message)


def test_a_variable_of_the_wrong_type(run_process):
    params = {"var": "rows", "path": "x.parquet"}
    result = run_process("io.write_parquet", params=params, inputs={"rows": [1, 2]})
    assert isinstance(result.error, ValueError)
    assert "params.var names 'rows', which holds a list, not a " in str(result.error)


def test_a_missing_file_names_the_resolved_path(run_process, project):
    params = {"path": "data/none.csv", "var": "x"}
    result = run_process("io.read_csv", params=params, project=project)
    assert isinstance(result.error, FileNotFoundError)
    assert str(result.error) == (
        f"io.read_csv: no file {project / 'data' / 'none.csv'} (params.path 'data/none.csv', "
        f"relative to the project root {project})"
    )


def test_writing_over_a_folder_is_refused(run_process, project):
    (project / "out").mkdir()
    inputs = {"df": pd.DataFrame({"a": [1]})}
    result = run_process("io.write_csv", params={"var": "df", "path": "out"}, inputs=inputs,
                         project=project)
    assert isinstance(result.error, ValueError)
    assert "params.path is a folder" in str(result.error)
