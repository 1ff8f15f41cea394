"""The sample processes of normandy 0.3, rebuilt on the process API (SPEC 4)."""

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
    pipe.vars.update("main_df", rows)


def process_data(pipe, log):
    rows = pipe.vars.get("main_df")
    stats: list[dict[str, object]] = []
    for column in ("id", "foo", "bar"):
        values = [float(r[column]) for r in rows]
        stats.append({"column": column, "count": len(values), "mean": sum(values) / len(values),
                      "min": min(values), "max": max(values)})
    _write_csv(pipe.get_path() / pipe.get_env_confs()["write"] / "sample_process.csv", stats)
    log.info("described %d columns", len(stats))


def add_data(pipe, log):
    rows = list(pipe.vars.get("main_df"))
    rows += [{"id": str(i), "foo": "2", "bar": str(i + 3)} for i in (6, 7, 8)]
    _write_csv(pipe.get_path() / pipe.get_env_confs()["write"] / "data_extra.csv", rows)
    log.info("now %d rows", len(rows))


def prints(pipe):
    for row in pipe.vars.get("main_df"):
        print(row["id"], row["foo"], row["bar"])


def read_file_with_err(log):
    log.info("about to fail")
    raise FileNotFoundError("raw_dev/missing.csv")


def process_data_with_err(params):
    raise ValueError("this process always fails")
