"""The sample processes of normandy 0.3, rebuilt on the process API (SPEC 4).

``read_file`` returns the rows it read (its entry stores them as ``main_df``); the others
take ``main_df`` as a parameter — Normandy passes the variable of that name. ``pipe`` still
gives the env's settings and the project's folder, as in 0.3 (``get_env_confs``,
``get_path``)."""

from __future__ import annotations

import csv
from pathlib import Path


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_file(pipe, log):
    path = pipe.get_path() / pipe.get_env_confs()["read"] / "sample_data.csv"
    rows = _read_csv(path)
    log.info("read %d rows from %s", len(rows), path.name)
    return rows


def process_data(main_df, pipe, log):
    rows = main_df
    stats: list[dict[str, object]] = []
    for column in ("id", "foo", "bar"):
        values = [float(r[column]) for r in rows]
        stats.append({"column": column, "count": len(values), "mean": sum(values) / len(values),
                      "min": min(values), "max": max(values)})
    _write_csv(pipe.get_path() / pipe.get_env_confs()["write"] / "sample_process.csv", stats)
    log.info("described %d columns", len(stats))


def add_data(main_df, pipe, log):
    rows = list(main_df)
    rows += [{"id": str(i), "foo": "2", "bar": str(i + 3)} for i in (6, 7, 8)]
    _write_csv(pipe.get_path() / pipe.get_env_confs()["write"] / "data_extra.csv", rows)
    log.info("now %d rows", len(rows))


def prints(main_df):
    for row in main_df:
        print(row["id"], row["foo"], row["bar"])


def read_file_with_err(log):
    log.info("about to fail")
    raise FileNotFoundError("raw_dev/missing.csv")


def process_data_with_err(params):
    raise ValueError("this process always fails")
