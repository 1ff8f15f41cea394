"""Charts of the fleet (matplotlib, PNG files)."""

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


def plot_price_distribution(model_input: pd.DataFrame, params: dict) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.hist(model_input["price"].dropna(), bins=50)
    axes.set(title="Shuttle prices", xlabel="price", ylabel="shuttles")
    _save(figure, params, "price_distribution.png")


def plot_capacity_vs_price(model_input: pd.DataFrame, params: dict) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    sample = model_input.sample(min(2000, len(model_input)), random_state=0)
    axes.scatter(sample["passenger_capacity"], sample["price"], s=4, alpha=0.5)
    axes.set(title="Capacity and price", xlabel="passengers", ylabel="price")
    _save(figure, params, "capacity_vs_price.png")


def plot_ratings(preprocessed_companies: pd.DataFrame, params: dict) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    ratings = preprocessed_companies.groupby("company_location")["company_rating"].mean()
    ratings.sort_values().plot.barh(ax=axes)
    axes.set(title="Mean company rating by location", xlabel="rating")
    _save(figure, params, "ratings.png")


def plot_review_scores(model_input: pd.DataFrame, params: dict) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    scores = [c for c in model_input.columns if c.startswith("review_scores")]
    model_input[scores].plot.box(ax=axes, rot=30)
    axes.set(title="Review scores by shuttle")
    _save(figure, params, "review_scores.png")


def plot_locations(location_summary: pd.DataFrame, params: dict) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    ordered = location_summary.sort_values("price")
    axes.bar(ordered["shuttle_location"], ordered["price"])
    axes.tick_params(axis="x", rotation=60)
    axes.set(title="Mean price by shuttle location", ylabel="price")
    _save(figure, params, "locations.png")
