"""Training and evaluating small models of a shuttle's price (scikit-learn)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split

FEATURES = [
    "engines",
    "passenger_capacity",
    "crew",
    "d_check_complete",
    "moon_clearance_complete",
    "iata_approved",
    "company_rating",
]


def split_data(model_input: pd.DataFrame, params: dict) -> tuple:
    table = model_input.dropna(subset=[*FEATURES, "price"])
    return tuple(
        train_test_split(
            table[FEATURES].astype(float),
            table["price"],
            test_size=params["test_size"],
            random_state=params["random_state"],
        )
    )


def train_linear(X_train: pd.DataFrame, y_train: pd.Series) -> LinearRegression:
    return LinearRegression().fit(X_train, y_train)


def train_ridge(X_train: pd.DataFrame, y_train: pd.Series) -> Ridge:
    return Ridge(alpha=1.0).fit(X_train, y_train)


def train_forest(X_train: pd.DataFrame, y_train: pd.Series, params: dict) -> RandomForestRegressor:
    model = RandomForestRegressor(
        n_estimators=params["trees"], max_depth=8, random_state=params["random_state"], n_jobs=1
    )
    return model.fit(X_train, y_train)


def train_boosting(
    X_train: pd.DataFrame, y_train: pd.Series, params: dict
) -> GradientBoostingRegressor:
    model = GradientBoostingRegressor(
        n_estimators=params["trees"], max_depth=3, random_state=params["random_state"]
    )
    return model.fit(X_train, y_train)


def evaluate_models(
    linear: LinearRegression,
    ridge: Ridge,
    forest: RandomForestRegressor,
    boosting: GradientBoostingRegressor,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    params: dict,
) -> dict:
    metrics = metrics_of(linear, ridge, forest, boosting, X_test, y_test)
    out = Path(params["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def metrics_of(
    linear: LinearRegression,
    ridge: Ridge,
    forest: RandomForestRegressor,
    boosting: GradientBoostingRegressor,
    X_test: pd.DataFrame,
    y_test: pd.Series,
) -> dict:
    """Each model's r² and mean absolute error (the datasets workload saves them as a
    dataset)."""
    metrics = {}
    models = {"linear": linear, "ridge": ridge, "forest": forest, "boosting": boosting}
    for name, model in models.items():
        predicted = model.predict(X_test)
        metrics[name] = {
            "r2": float(r2_score(y_test, predicted)),
            "mae": float(mean_absolute_error(y_test, predicted)),
        }
    return metrics
