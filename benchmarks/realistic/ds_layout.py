"""The realistic pipeline with datasets (issue 21), for both sides: the raw files and
what the pipeline writes are datasets of a catalog (Normandy's ``confs.datasets``, Kedro's
``catalog.yml``), so no task reads or writes a file: the six reader tasks of
``layout.py`` are gone, and the join, the evaluation and the charts return their data.
Data between the tasks of a flow stays in memory (Normandy's variables, Kedro's
``MemoryDataset``s); the science and reporting flows read the table the processing flow
wrote (``model_input``), as Kedro's pipelines do."""

from __future__ import annotations

from typing import Any

Task = tuple[str, str, "str | list[str]"]
"""``(module, function, outputs)``: a task's inputs are its function's parameters."""

CHARTS = {
    "price_chart": "price_distribution",
    "capacity_chart": "capacity_vs_price",
    "ratings_chart": "ratings",
    "reviews_chart": "review_scores",
    "locations_chart": "locations",
}

FLOWS: dict[str, list[tuple[str, list[Task]]]] = {
    "processing": [
        (
            "clean",
            [
                ("ml_data", "preprocess_companies", "preprocessed_companies"),
                ("ml_data", "preprocess_shuttles", "preprocessed_shuttles"),
                ("ml_data", "summarize_reviews", "review_summary"),
            ],
        ),
        ("join", [("ml_data", "model_input", "model_input")]),
    ],
    "science": [
        ("split", [("ml_science", "split_data", ["X_train", "X_test", "y_train", "y_test"])]),
        (
            "train",
            [
                ("ml_science", "train_linear", "linear"),
                ("ml_science", "train_ridge", "ridge"),
                ("ml_science", "train_forest", "forest"),
                ("ml_science", "train_boosting", "boosting"),
            ],
        ),
        ("evaluate", [("ml_science", "metrics_of", "metrics")]),
    ],
    "reporting": [
        (
            "prepare",
            [
                ("ml_data", "preprocess_companies", "preprocessed_companies"),
                ("ml_data", "summarize_locations", "location_summary"),
            ],
        ),
        ("plot", [("ml_plots", function, chart) for chart, function in CHARTS.items()]),
    ],
}

MODULES = ("ml_data", "ml_science", "ml_plots")
ONE_FLOW = "science"


def datasets(data: str) -> dict[str, dict[str, Any]]:
    """The catalog, in Normandy's words (``data``: the folder of the raw files; what the
    pipeline writes goes to ``out/`` in each project)."""
    found: dict[str, dict[str, Any]] = {
        "companies": {"type": "csv", "path": f"{data}/companies.csv"},
        "shuttles": {
            "type": "excel",
            "path": f"{data}/shuttles.xlsx",
            "load_args": {"engine": "openpyxl"},
        },
        "reviews": {"type": "parquet", "path": f"{data}/reviews.parquet"},
        "model_input": {"type": "parquet", "path": "out/model_input.parquet"},
        "forest": {"type": "pickle", "path": "out/models/forest.pickle", "versioned": True},
        "metrics": {"type": "json", "path": "out/metrics.json"},
    }
    for chart, function in CHARTS.items():
        found[chart] = {
            "type": "matplotlib",
            "path": f"out/charts/{function}.png",
            "save_args": {"dpi": 80},
        }
    return found


KEDRO_TYPES = {
    "csv": "pandas.CSVDataset",
    "excel": "pandas.ExcelDataset",
    "parquet": "pandas.ParquetDataset",
    "pickle": "pickle.PickleDataset",
    "json": "json.JSONDataset",
    "matplotlib": "matplotlib.MatplotlibDataset",
}
"""Each type's Kedro dataset (kedro-datasets)."""


def kedro_catalog(data: str) -> dict[str, dict[str, Any]]:
    """The same catalog in Kedro's words (``filepath``; CSV and Excel written without the
    index, as normandy-io writes them)."""
    catalog = {}
    for name, entry in datasets(data).items():
        out = {k: v for k, v in entry.items() if k not in ("type", "path")}
        out = {"type": KEDRO_TYPES[entry["type"]], "filepath": entry["path"], **out}
        catalog[name] = out
    return catalog
