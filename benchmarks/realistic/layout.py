"""The realistic pipeline's shape, for both sides: flows (Kedro: pipelines) of steps of
tasks, each a function of ``ml_data``, ``ml_science`` or ``ml_plots`` with the variable
(Kedro: dataset) its return value is stored as. A task's inputs are its function's
parameters, by name (``params``: the flow's params; Kedro: ``parameters``)."""

from __future__ import annotations

Task = tuple[str, str, "str | list[str] | None"]
"""``(module, function, outputs)``."""

FLOWS: dict[str, list[tuple[str, list[Task]]]] = {
    # the raw files (CSV, an Excel workbook, Parquet) into the table the models learn from
    "processing": [
        (
            "load",
            [
                ("ml_data", "load_companies", "companies"),
                ("ml_data", "load_shuttles", "shuttles"),
                ("ml_data", "load_reviews", "reviews"),
            ],
        ),
        (
            "clean",
            [
                ("ml_data", "preprocess_companies", "preprocessed_companies"),
                ("ml_data", "preprocess_shuttles", "preprocessed_shuttles"),
                ("ml_data", "summarize_reviews", "review_summary"),
            ],
        ),
        ("join", [("ml_data", "model_input_table", "model_input")]),
    ],
    # four models of a shuttle's price, from the table as the last processing left it
    "science": [
        ("load", [("ml_data", "load_model_input", "model_input")]),
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
        ("evaluate", [("ml_science", "evaluate_models", "metrics")]),
    ],
    # five charts
    "reporting": [
        (
            "load",
            [
                ("ml_data", "load_model_input", "model_input"),
                ("ml_data", "load_companies", "companies"),
            ],
        ),
        (
            "prepare",
            [
                ("ml_data", "preprocess_companies", "preprocessed_companies"),
                ("ml_data", "summarize_locations", "location_summary"),
            ],
        ),
        (
            "plot",
            [
                ("ml_plots", "plot_price_distribution", None),
                ("ml_plots", "plot_capacity_vs_price", None),
                ("ml_plots", "plot_ratings", None),
                ("ml_plots", "plot_review_scores", None),
                ("ml_plots", "plot_locations", None),
            ],
        ),
    ],
}

MODULES = ("ml_data", "ml_science", "ml_plots")

ONE_FLOW = "science"
"""The flow timed alone (``normandy run --flow``, ``kedro run --pipeline``)."""
