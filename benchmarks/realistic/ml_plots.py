"""Charts of the fleet (matplotlib): each chart a function returning its Figure (the
datasets workload saves them as datasets), and the same saved as PNG files by the
functions the realistic workload runs (``plot_*``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _save(figure: plt.Figure, params: dict, name: str) -> None:
    out = Path(params["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    figure.savefig(out / name, dpi=80)
    plt.close(figure)


def price_distribution(model_input: pd.DataFrame) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.hist(model_input["price"].dropna(), bins=50)
    axes.set(title="Shuttle prices", xlabel="price", ylabel="shuttles")
    return figure


def capacity_vs_price(model_input: pd.DataFrame) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(6, 4))
    sample = model_input.sample(min(2000, len(model_input)), random_state=0)
    axes.scatter(sample["passenger_capacity"], sample["price"], s=4, alpha=0.5)
    axes.set(title="Capacity and price", xlabel="passengers", ylabel="price")
    return figure


def ratings(preprocessed_companies: pd.DataFrame) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(6, 4))
    means = preprocessed_companies.groupby("company_location")["company_rating"].mean()
    means.sort_values().plot.barh(ax=axes)
    axes.set(title="Mean company rating by location", xlabel="rating")
    return figure


def review_scores(model_input: pd.DataFrame) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(6, 4))
    scores = [c for c in model_input.columns if c.startswith("review_scores")]
    model_input[scores].plot.box(ax=axes, rot=30)
    axes.set(title="Review scores by shuttle")
    return figure


def locations(location_summary: pd.DataFrame) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(6, 4))
    ordered = location_summary.sort_values("price")
    axes.bar(ordered["shuttle_location"], ordered["price"])
    axes.tick_params(axis="x", rotation=60)
    axes.set(title="Mean price by shuttle location", ylabel="price")
    return figure


def plot_price_distribution(model_input: pd.DataFrame, params: dict) -> None:
    _save(price_distribution(model_input), params, "price_distribution.png")


def plot_capacity_vs_price(model_input: pd.DataFrame, params: dict) -> None:
    _save(capacity_vs_price(model_input), params, "capacity_vs_price.png")


def plot_ratings(preprocessed_companies: pd.DataFrame, params: dict) -> None:
    _save(ratings(preprocessed_companies), params, "ratings.png")


def plot_review_scores(model_input: pd.DataFrame, params: dict) -> None:
    _save(review_scores(model_input), params, "review_scores.png")


def plot_locations(location_summary: pd.DataFrame, params: dict) -> None:
    _save(locations(location_summary), params, "locations.png")
