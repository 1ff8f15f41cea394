"""Reading and cleaning the raw data: a CSV, an Excel workbook and a Parquet file (pandas,
with openpyxl and pyarrow underneath)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def load_companies(params: dict) -> pd.DataFrame:
    return pd.read_csv(Path(params["data_dir"]) / "companies.csv")


def load_shuttles(params: dict) -> pd.DataFrame:
    return pd.read_excel(Path(params["data_dir"]) / "shuttles.xlsx", engine="openpyxl")


def load_reviews(params: dict) -> pd.DataFrame:
    return pd.read_parquet(Path(params["data_dir"]) / "reviews.parquet")


def load_model_input(params: dict) -> pd.DataFrame:
    """The table ``model_input_table`` makes, as the last nightly processing left it."""
    return pd.read_parquet(Path(params["data_dir"]) / "model_input.parquet")


def _is_true(column: pd.Series) -> pd.Series:
    return column == "t"


def _percent(column: pd.Series) -> pd.Series:
    return column.str.rstrip("%").astype(float) / 100


def _money(column: pd.Series) -> pd.Series:
    return column.str.replace("[$,]", "", regex=True).astype(float)


def preprocess_companies(companies: pd.DataFrame) -> pd.DataFrame:
    out = companies.copy()
    out["iata_approved"] = _is_true(out["iata_approved"])
    out["company_rating"] = _percent(out["company_rating"])
    return out


def preprocess_shuttles(shuttles: pd.DataFrame) -> pd.DataFrame:
    out = shuttles.copy()
    out["d_check_complete"] = _is_true(out["d_check_complete"])
    out["moon_clearance_complete"] = _is_true(out["moon_clearance_complete"])
    out["price"] = _money(out["price"])
    return out


def summarize_reviews(reviews: pd.DataFrame) -> pd.DataFrame:
    scores = [c for c in reviews.columns if c.startswith("review_scores")]
    summary = reviews.groupby("shuttle_id")[scores].mean()
    summary["reviews"] = reviews.groupby("shuttle_id").size()
    return summary.reset_index()


def summarize_locations(model_input: pd.DataFrame) -> pd.DataFrame:
    by = model_input.groupby("shuttle_location")
    return pd.DataFrame({"price": by["price"].mean(), "shuttles": by.size()}).reset_index()


def model_input(
    preprocessed_companies: pd.DataFrame,
    preprocessed_shuttles: pd.DataFrame,
    review_summary: pd.DataFrame,
) -> pd.DataFrame:
    """The table the models learn from (the datasets workload saves it as a dataset)."""
    table = preprocessed_shuttles.merge(
        preprocessed_companies, left_on="company_id", right_on="id", suffixes=("", "_company")
    ).merge(review_summary, left_on="id", right_on="shuttle_id", how="left")
    return table.dropna(subset=["price"])


def model_input_table(
    preprocessed_companies: pd.DataFrame,
    preprocessed_shuttles: pd.DataFrame,
    review_summary: pd.DataFrame,
    params: dict,
) -> pd.DataFrame:
    table = model_input(preprocessed_companies, preprocessed_shuttles, review_summary)
    out = Path(params["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "model_input.parquet")
    return table
