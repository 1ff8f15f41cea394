"""Ingestion: the raw files read, their columns typed as the params say, and the
intermediate tables written as Parquet for the pipelines that follow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def load_csv(path: str) -> pd.DataFrame:
    return pd.read_csv(path)


def load_excel(path: str) -> pd.DataFrame:
    return pd.read_excel(path, engine="openpyxl")


def load_parquet(path: str) -> pd.DataFrame:
    return pd.read_parquet(path)


def apply_types(frame: pd.DataFrame, columns: dict) -> pd.DataFrame:
    """``columns``: ``{floats: [...], flags: [...]}`` (a flag is ``yes``/``no``)."""
    typed = frame.copy()
    for name in columns.get("floats", []):
        typed[name] = pd.to_numeric(typed[name], errors="coerce")
    for name in columns.get("flags", []):
        typed[name] = typed[name].eq("yes")
    return typed


def summarize_inspections(inspections: pd.DataFrame, grades: list) -> pd.DataFrame:
    summary = inspections.groupby("vessel_id")[grades].mean()
    summary["inspections"] = inspections.groupby("vessel_id").size()
    summary["pass_rate"] = inspections.groupby("vessel_id")["passed"].mean()
    return summary.reset_index()


def write_parquet(frame: pd.DataFrame, path: str) -> str:
    """Write ``frame``; its path (Kedro's next pipelines read the file it names)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path
