"""Modelling: one train/evaluate template, used for each model (a linear regression and
a random forest of a vessel's day rate)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split

MODELS = {"linear": LinearRegression, "forest": RandomForestRegressor}


def split_data(data: pd.DataFrame, parameters: dict) -> tuple:
    features = [c for c in data.columns if c not in ("vessel_id", "operator_id", "day_rate")]
    table = data.dropna(subset=[*features, "day_rate"])
    return tuple(
        train_test_split(
            table[features].astype(float),
            table["day_rate"],
            test_size=parameters["test_size"],
            random_state=parameters["random_state"],
        )
    )


def train_model(X_train: pd.DataFrame, y_train: pd.Series, model: str, options: dict):  # noqa: ANN201
    return MODELS[model](**options).fit(X_train, y_train)


def evaluate_model(regressor, X_test: pd.DataFrame, y_test: pd.Series) -> dict:  # noqa: ANN001
    predicted = regressor.predict(X_test)
    return {
        "r2": round(float(r2_score(y_test, predicted)), 6),
        "mae": round(float(mean_absolute_error(y_test, predicted)), 4),
        "rows": int(len(y_test)),
    }


def write_metrics(path: str, **metrics: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(metrics, indent=1, sort_keys=True))
