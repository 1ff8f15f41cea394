"""Feature engineering: static and derived features of each vessel, joined onto a spine
of vessels by a variadic joiner into the model's input table."""

from __future__ import annotations

import pandas as pd


def vessel_spine(vessels: pd.DataFrame) -> pd.DataFrame:
    return vessels[["vessel_id", "operator_id", "day_rate"]].dropna()


def static_features(vessels: pd.DataFrame, options: dict) -> pd.DataFrame:
    table = vessels[["vessel_id", *options["columns"]]].copy()
    table["age"] = options["reference_year"] - vessels["built"]
    for name in options.get("one_hot", []):
        table = pd.concat([table, pd.get_dummies(vessels[name], prefix=name, dtype=float)], axis=1)
    return table


def operator_features(
    vessels: pd.DataFrame, operators: pd.DataFrame, options: dict
) -> pd.DataFrame:
    joined = vessels[["vessel_id", "operator_id"]].merge(operators, on="operator_id", how="left")
    table = joined[["vessel_id", "safety_score", "certified"]].copy()
    table["certified"] = table["certified"].astype(float)
    table["operator_age"] = options["reference_year"] - joined["founded"]
    return table


def inspection_features(summary: pd.DataFrame, options: dict) -> pd.DataFrame:
    kept = summary[summary["inspections"] >= options["min_inspections"]]
    return kept.drop(columns=["inspections"])


def join_features(spine: pd.DataFrame, *features: pd.DataFrame) -> pd.DataFrame:
    """The spine with every feature table joined on ``vessel_id``, in order."""
    table = spine
    for frame in features:
        table = table.merge(frame, on="vessel_id", how="inner")
    return table.sort_values("vessel_id").reset_index(drop=True)
